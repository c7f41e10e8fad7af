"""Fine-tune a sequence classifier on any dataset with any transfer method.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/classification.py \
        --config recipes/configs/classification/movie_minilm.yaml

Every flag overrides the YAML file; every ``transformers.TrainingArguments`` flag works unchanged.
"""

from __future__ import annotations

from transformers import set_seed

from tlnlp.config import DataArgs, ModelArgs, TrainingArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.models import load_classifier
from tlnlp.tasks import load_task_data, make_compute_metrics
from tlnlp.tasks.classification.tokenize import tokenize_classification
from tlnlp.training import (
    build_trainer,
    finish_run,
    format_metrics_table,
    prepare_output_dir,
    setup_logging,
)


def main(model_args: ModelArgs, data_args: DataArgs, method_args: MethodArgs,
         train_args: TrainingArgs) -> dict[str, float]:
    """Train, evaluate and save a classifier; returns every metric (train_*, eval_*, test_*)."""
    setup_logging(train_args)
    resume = prepare_output_dir(train_args)  # refuse to write over someone's files before any work
    set_seed(train_args.seed)
    data = load_task_data(data_args, task="classification")
    model, tokenizer = load_classifier(model_args, labels=data.labels, multi_label=data.multi_label)
    model, param_groups = apply_method(model, method_args)
    with train_args.main_process_first(desc="tokenize"):
        tokenized = tokenize_classification(data, tokenizer, data_args.max_seq_length)
    trainer = build_trainer(
        model, tokenizer, tokenized, train_args, param_groups,
        compute_metrics=make_compute_metrics(data.num_labels, data.multi_label, data_args.multi_label_threshold),
        early_stopping_patience=method_args.early_stopping_patience, method_args=method_args,
    )
    train_result = trainer.train(resume_from_checkpoint=resume)
    metrics = finish_run(trainer, train_result, tokenized, data, model_args, data_args, method_args, train_args)
    if trainer.is_world_process_zero():
        print(format_metrics_table(metrics, title=f"\n{data.name} | {model_args.model_name_or_path} | "
                                                  f"method={method_args.method}"))
        print(f"Model, metrics, predictions and card in {train_args.output_dir}")
    return metrics


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(ModelArgs, DataArgs, MethodArgs, TrainingArgs))
