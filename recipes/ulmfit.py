"""ULMFiT end to end: adapt the language model to the task's texts, then fine-tune a classifier with gradual unfreezing.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/ulmfit.py \
        --config recipes/configs/ulmfit/trec6_minilm.yaml

Stage 1 (``--lm_adaptation true``, the default) continues pretraining on unlabelled text, by default every
training text of the task (also the ones ``--max_train_samples`` / ``--train_samples_per_class`` leave unlabelled;
labels ignored), or ``--lm_text_file`` (a .txt file, one text per line, or a csv/jsonl/... with ``--text_column``).
It writes the adapted model and its held-out perplexity before/after into ``<output_dir>/lm_adaptation``.
Stage 2 fine-tunes a classifier from it with the ULMFiT options (discriminative rates, slanted triangular schedule,
gradual unfreezing; ``--method ulmfit`` by default) and writes the usual results, plots and card into
``output_dir``. ``--resume_from_checkpoint last`` continues whichever stage was interrupted.

``--hp_search optuna`` searches stage 2, the classifier trained on the task's labels: stage 1 runs once with the
given ``--lm_*`` values, each trial fine-tunes its adapted model and is scored on the validation split, and the best
values train the final classifier. ``hp_search/best_config.yaml`` reruns the best trial from this run's adapted model.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.config.run_folder import claim_output_dir
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.runs import LmRunOptions, RunContext, TrainedRun, finish, format_metrics_table, run_lm_adaptation
from tlnlp.search import HpSearchArgs, SearchSetup, prepare_search_output_dir, run_hp_search, search_in_progress
from tlnlp.tasks import TASKS
from tlnlp.training import build_trainer, refuse_evaluation_only, refuse_long_text_chunk, setup_logging

LM_DIR = "lm_adaptation"


@dataclass
class LmStageArgs:
    """Stage 1, language-model adaptation (the classifier stage uses the usual flags)."""

    lm_adaptation: bool = field(default=True, metadata={"help": "Run stage 1 (LM adaptation) first."})
    lm_text_file: str | None = field(default=None, metadata={
        "help": "Text to adapt on: a .txt file (one text per line) or a csv/jsonl/... file's --text_column. "
                "Default: every training text of the task, labels ignored."})
    lm_learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate of stage 1."})
    lm_num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs of stage 1."})
    lm_max_steps: int = field(default=-1, metadata={"help": "Steps of stage 1 (overrides lm_num_train_epochs)."})
    lm_head_warmup_steps: int = field(default=0, metadata={
        "help": "Stage 1: train only the LM head for this many steps first (for checkpoints without an LM head)."})
    lm_objective: str = field(default="auto", metadata={"help": "auto, mlm or clm."})
    perplexity_max_texts: int = field(default=300, metadata={"help": "Held-out texts scored before and after."})


def adapt(model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs, train_args: TrainingArgs,
          stage: LmStageArgs, resuming: bool) -> dict[str, float]:
    """Stage 1 into ``<output_dir>/lm_adaptation`` (skipped when a resumed run already finished it)."""
    lm_dir = Path(train_args.output_dir) / LM_DIR
    if (lm_dir / "lm_results.json").is_file() and resuming:
        return {k: v for k, v in json.loads((lm_dir / "all_results.json").read_text()).items()}
    lm_task = TASKS.get("language-modeling")
    if stage.lm_text_file:
        text = lm_task.load_data(DataArgs(train_file=stage.lm_text_file, text_column=data_args.text_column,
                                          split_seed=data_args.split_seed))
    else:
        text = lm_task.load_data(data_args, labelled_task=True)  # the task's training texts, labels ignored
    lm_method = dataclasses.replace(method_args, method="ulmfit", gradual_unfreezing="off", unfreeze_every_steps=None,
                                    unfreeze_fraction=None, head_warmup_steps=stage.lm_head_warmup_steps,
                                    early_stopping_patience=None)
    lm_train = dataclasses.replace(
        train_args, output_dir=str(lm_dir), learning_rate=stage.lm_learning_rate, max_steps=stage.lm_max_steps,
        num_train_epochs=stage.lm_num_train_epochs, eval_strategy="no", load_best_model_at_end=False,
        save_strategy="epoch" if stage.lm_max_steps < 0 else "steps", metric_for_best_model=None,
        resume_from_checkpoint=None, overwrite_output_dir=True, push_to_hub=False)  # only the final model is pushed
    checkpoint = get_last_checkpoint(str(lm_dir)) if resuming and lm_dir.is_dir() else None
    return run_lm_adaptation(model_args, text, lm_method, lm_train, LmRunOptions(
        objective=stage.lm_objective, max_seq_length=data_args.max_seq_length,
        perplexity_max_texts=stage.perplexity_max_texts, resume_from_checkpoint=checkpoint,
        config_objects=(model_args, data_args, lm_method, lm_train, stage), recipe="ulmfit"))


#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, MethodArgs, TrainingArgs, LmStageArgs, HpSearchArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS = {"method": "ulmfit"}


def _prepare(train_args: TrainingArgs, hp_args: HpSearchArgs | None, method_args: MethodArgs):
    """``(checkpoint of stage 2 or None, whether a finished stage 1 is reused)``, the folder guarded or claimed."""
    out = Path(train_args.output_dir)
    resuming = train_args.resume_from_checkpoint is not None or search_in_progress(train_args, hp_args, (LM_DIR,))
    if train_args.resume_from_checkpoint is None or (out.is_dir() and get_last_checkpoint(str(out)) is not None):
        # refuse a non-empty folder before any work; or continue stage 2, or an interrupted search
        return prepare_search_output_dir(train_args, hp_args, method_args, (LM_DIR,)), resuming
    claim_output_dir(out)  # stage 2 starts afresh in the interrupted run's folder, which this run now holds
    return None, resuming


def main(model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs, train_args: TrainingArgs,
         stage: LmStageArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Both stages; returns the classifier's metrics plus ``lm_perplexity_before``/``lm_perplexity_after``."""
    setup_logging(train_args)
    refuse_evaluation_only(train_args, 'ulmfit')  # this recipe always trains
    refuse_long_text_chunk(data_args, "ulmfit")  # and scores rows cut to max_seq_length
    out = Path(train_args.output_dir)
    resume, resuming = _prepare(train_args, hp_args, method_args)
    set_seed(train_args.seed)
    lm_metrics: dict[str, float] = {}
    start = model_args
    if stage.lm_adaptation:
        lm_metrics = adapt(model_args, data_args, method_args, train_args, stage, resuming)
        start = dataclasses.replace(model_args, model_name_or_path=str(out / LM_DIR))
        set_seed(train_args.seed)
    task = TASKS.get("classification")
    data = task.load_data(data_args)
    model, tokenizer = task.load_model(start, data)
    with train_args.main_process_first(desc="tokenize"):
        tokenized = task.tokenize(data, tokenizer, data_args)
    objects, scores = (model_args, data_args, method_args, train_args, stage), task.compute_metrics(data, data_args)
    searched = run_hp_search(hp_args, SearchSetup(  # stage 2 only: each trial starts from the adapted model
        "ulmfit", task, data, start, method_args, train_args, tokenizer, tokenized, objects, compute_metrics=scores,
        best_overrides={"lm_adaptation": False, "model_name_or_path": start.model_name_or_path}))
    prepared = apply_method(model, method_args)
    trainer = build_trainer(prepared, tokenizer, tokenized, train_args, compute_metrics=scores)
    train_result = trainer.train(resume_from_checkpoint=resume)
    metrics = finish(RunContext(
        output_dir=out, recipe="ulmfit", task=task, data=data, base_model=model_args.model_name_or_path,
        config_objects=objects, trained=TrainedRun(trainer, train_result, tokenized, prepared),
        sections=searched.sections, results={**searched.results, **{
            f"lm_{k}": v for k, v in lm_metrics.items() if k.startswith("perplexity")}}))
    if trainer.is_world_process_zero():
        if lm_metrics:
            print(f"LM adaptation: held-out perplexity {lm_metrics['perplexity_before']:.2f} -> "
                  f"{lm_metrics['perplexity_after']:.2f} ({out / LM_DIR})")
        print(format_metrics_table(metrics, title=f"\n{data.name} | {model_args.model_name_or_path} | "
                                                  f"method={method_args.method}"))
    return metrics

if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
