"""Fine-tune an extractive question-answering model (SQuAD v1.1 / v2.0 style) with any transfer method.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/question_answering.py \
        --config recipes/configs/question_answering/qa_tlnlp_minilm.yaml

The flags follow the Hugging Face question-answering example (``--version_2_with_negative``,
``--max_seq_length``, ``--doc_stride``, ``--n_best_size``, ``--max_answer_length``,
``--null_score_diff_threshold``; ``--train_file`` / ``--validation_file`` / ``--test_file`` take nested SQuAD
JSON or flat csv/jsonl/parquet files), and every ``transformers.TrainingArguments`` flag works unchanged.
Validation answers go to ``predictions.json`` (scored as ``eval_exact``, ``eval_f1``, ...), test answers to
``test_predictions.json``. With none of ``--do_train/--do_eval/--do_predict`` it trains, evaluates and predicts;
with any, it does just those: evaluation only scores a trained run's folder as its training run did
(``--model_name_or_path runs/qa --do_eval --do_predict``, with the run's window settings) and trains nothing.
"""

from __future__ import annotations

import dataclasses
import functools

from transformers import set_seed

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.config.qa_args import QAArgs
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.runs import RunContext, TrainedRun, evaluate_saved_qa, finish, format_metrics_table, saved_qa_settings
from tlnlp.search import HpSearchArgs, SearchSetup, prepare_search_output_dir, run_hp_search
from tlnlp.tasks import TASKS
from tlnlp.tasks.qa.evaluate import evaluate_qa_split
from tlnlp.training import build_trainer, only_requested_splits, requested_stages, setup_logging

#: Defaults of this recipe (the Hugging Face example's window size); a YAML key or flag overrides them.
DEFAULTS = {"max_seq_length": 384}
TRAINED = "Model, answers (predictions.json, test_predictions.json), metrics and card"
EVALUATED = "Answers (predictions.json, test_predictions.json) and metrics"
SHOWN = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_f1", "best_f1_thresh", "loss")


#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, QAArgs, MethodArgs, TrainingArgs, HpSearchArgs)


def main(model_args: ModelArgs, data_args: DataArgs, qa_args: QAArgs, method_args: MethodArgs,
         train_args: TrainingArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Train, answer validation and test questions and save the model (or just score a run's folder); every metric."""
    setup_logging(train_args)
    stages = requested_stages(train_args)
    resume = prepare_search_output_dir(train_args, hp_args, method_args)  # refuse to write over someone's files
    set_seed(train_args.seed)
    task = TASKS.get("question-answering")
    if not stages.train:  # score a trained run's folder, train nothing
        data_args, qa_args = saved_qa_settings(model_args, data_args, qa_args, stages)
        data = task.load_data(data_args, qa_args=qa_args)
        metrics = evaluate_saved_qa(model_args, data, train_args, stages,
                                    (model_args, data_args, qa_args, method_args, train_args))
        return _report(metrics, data, model_args, method_args, train_args, saved=EVALUATED)
    data = task.load_data(data_args, qa_args=qa_args)
    model, tokenizer = task.load_model(model_args, data)
    with train_args.main_process_first(desc="tokenize"):
        windows = task.tokenize(data, tokenizer, data_args, qa_args=qa_args)
    objects = (model_args, data_args, qa_args, method_args, train_args)
    scorer = functools.partial(evaluate_qa_split, examples=data.splits.get("validation"), qa_args=qa_args,
                               windows=windows.get("validation"), prefix="eval",
                               threshold=qa_args.null_score_diff_threshold)
    searched = run_hp_search(hp_args, SearchSetup("question_answering", task, data, model_args, method_args, train_args,
                                                  tokenizer, task.trainer_datasets(windows), objects, scorer=scorer,
                                                  default_metric="f1"))  # trials score validation EM/F1
    prepared = apply_method(model, method_args)
    prepared = dataclasses.replace(prepared, model=task.prepare_model(prepared.model))  # see its docstring
    # training sees model inputs and start/end labels only; the evaluation columns stay for post-processing
    trainer = build_trainer(prepared, tokenizer, task.trainer_datasets(windows), train_args)
    train_result = trainer.train(resume_from_checkpoint=resume)
    metrics = finish(RunContext(  # the final scoring answers only the splits asked for
        output_dir=train_args.output_dir, recipe="question_answering", task=task,
        data=only_requested_splits(data, stages), base_model=model_args.model_name_or_path,
        config_objects=objects, sections=searched.sections,
        trained=TrainedRun(trainer, train_result, only_requested_splits(windows, stages), prepared),
        results={"train_windows": len(windows["train"]), **searched.results}))
    return _report(metrics, data, model_args, method_args, train_args) if trainer.is_world_process_zero() else metrics


def _report(metrics, data, model_args, method_args, train_args, saved=TRAINED) -> dict[str, float]:
    shown = {k: v for k, v in metrics.items() if k.startswith("train_loss") or k.partition("_")[2] in SHOWN}
    print(format_metrics_table(shown, title=f"\n{data.name} | {model_args.model_name_or_path} | "
                                            f"method={method_args.method}"))
    print(f"{saved} in {train_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
