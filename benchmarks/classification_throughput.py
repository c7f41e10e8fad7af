"""Training throughput: tlnlp's classification set-up against the Hugging Face example-script default.

Same model (bundled MiniLM), same data (bundled movie_sentiment), same hyperparameters and epochs, in one run:

- baseline: every example padded to max_length 128 (``padding="max_length"``, ``default_data_collator``) and
  randomly ordered batches, as ``run_glue.py`` does by default;
- tlnlp: ``tokenize_classification`` (no padding) + ``build_trainer`` (dynamic padding, length-grouped batches).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/classification_throughput.py [--train_samples 4000]

The last line printed is one JSON object with ``speedup`` (train samples/s ratio), ``tlnlp_accuracy`` and
``baseline_accuracy`` on the same held-out test rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from transformers import Trainer, TrainingArguments, default_data_collator, set_seed

from tlnlp.config import DataArgs, ModelArgs
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.models import load_classifier
from tlnlp.tasks import load_task_data, make_compute_metrics
from tlnlp.tasks.classification.tokenize import tokenize_classification
from tlnlp.training import build_trainer


def _train_args(out: str, opts: argparse.Namespace, sampling: str) -> TrainingArguments:
    return TrainingArguments(
        output_dir=out, per_device_train_batch_size=opts.batch_size, per_device_eval_batch_size=128,
        learning_rate=opts.learning_rate, num_train_epochs=opts.epochs, weight_decay=0.01, warmup_steps=0.06,
        seed=opts.seed, report_to="none", save_strategy="no", eval_strategy="no", logging_steps=50,
        train_sampling_strategy=sampling, use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        average_tokens_across_devices=False,
    )


def _run_arm(name: str, data, opts: argparse.Namespace) -> dict:
    set_seed(opts.seed)
    model, tokenizer = load_classifier(ModelArgs(model_name_or_path="bundled:minilm"), labels=data.labels)
    prepared = apply_method(model, MethodArgs(method="full"))
    model = prepared.model
    metrics_fn = make_compute_metrics(data.num_labels)
    with tempfile.TemporaryDirectory() as out:
        if name == "tlnlp":
            tokenized = tokenize_classification(data, tokenizer, opts.max_seq_length)
            trainer = build_trainer(prepared, tokenizer, tokenized, _train_args(out, opts, "group_by_length"),
                                    compute_metrics=metrics_fn)
        else:
            def encode(batch):
                enc = tokenizer(batch["text"], padding="max_length", max_length=opts.max_seq_length, truncation=True)
                enc["labels"] = batch["label"]
                return enc

            tokenized = data.splits.map(encode, batched=True, remove_columns=data.splits["train"].column_names)
            trainer = Trainer(model=model, args=_train_args(out, opts, "random"), train_dataset=tokenized["train"],
                              data_collator=default_data_collator, compute_metrics=metrics_fn,
                              processing_class=tokenizer)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        test = trainer.evaluate(tokenized["test"], metric_key_prefix="test")
    samples = len(tokenized["train"]) * opts.epochs
    lengths = [sum(mask) for mask in tokenized["train"]["attention_mask"]]
    return {"mean_real_tokens": round(float(np.mean(lengths)), 1),
            "tokens_per_row_fed": opts.max_seq_length if name == "baseline" else "dynamic",
            "train_seconds": round(seconds, 2), "train_samples_per_second": round(samples / seconds, 2),
            "accuracy": round(test["test_accuracy"], 4), "f1_macro": round(test["test_f1_macro"], 4)}


def main() -> None:
    """Run both arms on the same data and print the comparison; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train_samples", type=int, default=4000)
    parser.add_argument("--test_samples", type=int, default=1000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    opts = parser.parse_args()
    data = load_task_data(DataArgs(dataset_name="bundled:movie_sentiment", max_train_samples=opts.train_samples,
                                   max_predict_samples=opts.test_samples))
    results = {}
    for arm in ("baseline", "tlnlp"):
        results[arm] = _run_arm(arm, data, opts)
        print(f"{arm:>8}: {results[arm]}", flush=True)
    speedup = results["tlnlp"]["train_samples_per_second"] / results["baseline"]["train_samples_per_second"]
    print(json.dumps({
        "benchmark": "classification_throughput", "model": "bundled:minilm", "dataset": "bundled:movie_sentiment",
        "train_samples": len(data.splits["train"]), "test_samples": len(data.splits["test"]), "epochs": opts.epochs,
        "batch_size": opts.batch_size, "max_seq_length": opts.max_seq_length, "torch_threads": torch.get_num_threads(),
        "speedup": round(speedup, 3), "tlnlp_accuracy": results["tlnlp"]["accuracy"],
        "baseline_accuracy": results["baseline"]["accuracy"],
        "accuracy_difference": round(results["tlnlp"]["accuracy"] - results["baseline"]["accuracy"], 4),
        "tlnlp": results["tlnlp"], "baseline": results["baseline"],
    }))


if __name__ == "__main__":
    main()
