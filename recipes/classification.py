"""Fine-tune a sequence classifier on any dataset with any transfer method.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/classification.py \
        --config recipes/configs/classification/movie_minilm.yaml

Every flag overrides the YAML file; every ``transformers.TrainingArguments`` flag works unchanged. With none of
``--do_train/--do_eval/--do_predict`` it trains, evaluates and predicts; with any, it does just those: evaluation
only scores a trained run's folder (``--model_name_or_path runs/movie --do_eval --do_predict``) and trains nothing.
"""

from __future__ import annotations

from transformers import set_seed

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.ensemble import (
    EnsembleArgs,
    EnsembleError,
    EnsembleRun,
    average_checkpoints_if_asked,
    check_checkpoint_averaging,
    run_ensemble,
)
from tlnlp.errors import user_errors
from tlnlp.methods import METHODS, MethodArgs, apply_method
from tlnlp.runs import (
    EmbeddingRun,
    RunContext,
    TrainedRun,
    evaluate_saved_classifier,
    finish,
    format_metrics_table,
    run_embedding_method,
)
from tlnlp.search import HpSearchArgs, SearchSetup, prepare_search_output_dir, run_hp_search
from tlnlp.tasks import TASKS
from tlnlp.training import (
    TlnlpTrainer,
    build_trainer,
    only_requested_splits,
    requested_stages,
    setup_logging,
)
from tlnlp.zeroshot import label_prior


def fit_without_trainer(run: EmbeddingRun, task, data) -> dict[str, float]:
    """A method that fits a head on sentence embeddings (feature_extraction, setfit), with its zero-shot prior."""
    args = run.method_args
    if args.head_init == "zero_shot":
        run.prior = label_prior(args.head_zero_shot_spec, data.name, data.labels)
    return run_embedding_method(run, task, data)


#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, DataArgs, MethodArgs, TrainingArgs, HpSearchArgs, EnsembleArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs,
         train_args: TrainingArgs, hp_args: HpSearchArgs | None = None,
         ensemble_args: EnsembleArgs | None = None) -> dict[str, float]:
    """Train, evaluate and save a classifier (after a hyperparameter search with ``--hp_search``); every metric.

    With ``--ensemble_seeds N`` it trains N such runs (``members/seed-<s>``) and scores their soft vote.
    """
    setup_logging(train_args)
    stages = requested_stages(train_args)
    ensemble_args = ensemble_args or EnsembleArgs()
    check_checkpoint_averaging(ensemble_args.average_checkpoints, train_args, method_args, model_args)
    if ensemble_args.is_ensemble:
        return _ensemble(model_args, data_args, method_args, train_args, hp_args, ensemble_args)
    resume = prepare_search_output_dir(train_args, hp_args, method_args)  # refuse to write over someone's files
    set_seed(train_args.seed)
    task = TASKS.get("classification")
    data = task.load_data(data_args)
    if not stages.train:  # score a trained folder, train nothing
        metrics = evaluate_saved_classifier(model_args, data, train_args, stages,
                                            (model_args, data_args, method_args, train_args))
        return _report(metrics, data, model_args, method_args, train_args)
    if not METHODS.get(method_args.method).trains_with_trainer:
        task.check_method(data_args, METHODS.get(method_args.method))  # --long_text chunk needs the Trainer
        data = only_requested_splits(data, stages)
        run = EmbeddingRun(model_args, data_args, method_args, train_args, resume_from=resume)
        return _report(fit_without_trainer(run, task, data), data, model_args, method_args, train_args)
    model, tokenizer = task.load_model(model_args, data)
    with train_args.main_process_first(desc="tokenize"):
        tokenized = task.tokenize(data, tokenizer, data_args)
    objects = (model_args, data_args, method_args, train_args, ensemble_args)
    parts = {"compute_metrics": task.compute_metrics(data, data_args),
             "trainer_class": task.trainer_class(data_args, TlnlpTrainer)}  # scores rows, not windows
    searched = run_hp_search(hp_args, SearchSetup("classification", task, data, model_args, method_args, train_args,
                                                  tokenizer, tokenized, objects, **parts))  # sets the best values
    prepared = apply_method(model, method_args)
    trainer = build_trainer(prepared, tokenizer, tokenized, train_args, **parts)
    train_result = trainer.train(resume_from_checkpoint=resume)
    averaged = average_checkpoints_if_asked(trainer, ensemble_args.average_checkpoints)  # the last K checkpoints' mean
    scored = only_requested_splits(tokenized, stages)
    metrics = finish(RunContext(
        output_dir=train_args.output_dir, recipe="classification", task=task, data=data,
        base_model=model_args.model_name_or_path, config_objects=objects,
        trained=TrainedRun(trainer, train_result, scored, prepared),
        sections={**searched.sections, **averaged.sections},  # results: <split>_truncated_rows, hp_search_*...
        results={**tokenized.length_metrics(scored), **searched.results, **averaged.results}))
    return _report(metrics, data, model_args, method_args, train_args) if trainer.is_world_process_zero() else metrics


def _ensemble(model_args, data_args, method_args, train_args, hp_args, ensemble_args) -> dict[str, float]:
    """``--ensemble_seeds N``: N ordinary runs of this recipe, then their soft vote (see :mod:`tlnlp.ensemble`)."""
    if hp_args is not None and hp_args.enabled:
        raise EnsembleError("hp_search and ensemble_seeds: search once without --ensemble_seeds, then train the "
                            "ensemble with the values it found.")

    def member(member_args: TrainingArgs) -> dict[str, float]:
        return main(model_args, data_args, method_args, member_args, None, ensemble_args.for_member())

    metrics = run_ensemble(EnsembleRun(model_args, data_args, method_args, train_args, ensemble_args, member))
    if metrics:  # the main process
        print(format_metrics_table(metrics, title=f"\nEnsemble of {ensemble_args.ensemble_seeds} x method="
                                                  f"{method_args.method} | {model_args.model_name_or_path}"))
        print(f"Ensemble (members/, ensemble.json), metrics, predictions and card in {train_args.output_dir}")
    return metrics


def _report(metrics, data, model_args, method_args, train_args) -> dict[str, float]:
    print(format_metrics_table(metrics, title=f"\n{data.name} | {model_args.model_name_or_path} | "
                                              f"method={method_args.method}"))
    print(f"Model, metrics, predictions and card in {train_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
