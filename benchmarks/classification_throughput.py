"""Training throughput: tlnlp's classification set-up against the Hugging Face example-script default.

Same model (bundled MiniLM), same data (bundled movie_sentiment), same hyperparameters and epochs, in one run:

- baseline: every example padded to max_length 128 (``padding="max_length"``, ``default_data_collator``) and
  randomly ordered batches, as ``run_glue.py`` does by default;
- tlnlp: ``tokenize_classification`` (no padding) + ``build_trainer`` (dynamic padding, length-grouped batches,
  and on a CPU the cheap dropout masks of ``--cpu_dropout fast``, :mod:`tlnlp.models.cpu_dropout`);
- tlnlp_bf16: the same with bf16 autocast, run where this CPU's bf16 matmul beats fp32 (what ``--bf16 auto`` picks).

How close each arm is to the machine: the same run times a plain fp32 matmul of the model's feed-forward shapes
(``batch_size x 27`` rows, about a batch's real tokens; hidden x intermediate; the best of ten one-second timings
before and after the arms) and reports ``mfu``: the model FLOPs each arm
performs per second (6 x non-embedding parameters per real token, attention scores aside) over that fp32 rate. The
padded baseline spends most of its FLOPs on padding, so its useful-FLOP MFU is low; the bf16 arm can exceed 1.0
because its peak is the bf16 rate (``mfu_of_bf16_peak`` gives that ratio).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/classification_throughput.py [--train_samples 4000]

The last line printed is one JSON object with ``speedup`` (train samples/s ratio), ``tlnlp_accuracy`` and
``baseline_accuracy`` on the same held-out test rows, ``mfu`` per arm, and the bf16 arm's speed-up over fp32.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch
from transformers import AutoConfig, Trainer, TrainingArguments, default_data_collator, set_seed

from tlnlp.assets import bundled_model_path
from tlnlp.config import DataArgs, ModelArgs
from tlnlp.config.precision import MIN_CPU_SPEEDUP, cpu_bf16_speedup
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.models import load_classifier
from tlnlp.tasks import load_task_data, make_compute_metrics
from tlnlp.tasks.classification.tokenize import tokenize_classification
from tlnlp.training import build_trainer


def _train_args(out: str, opts: argparse.Namespace, sampling: str, bf16: bool = False) -> TrainingArguments:
    return TrainingArguments(
        bf16=bf16,
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
        if name.startswith("tlnlp"):
            tokenized = tokenize_classification(data, tokenizer, opts.max_seq_length)
            args = _train_args(out, opts, "group_by_length", bf16=name == "tlnlp_bf16")
            trainer = build_trainer(prepared, tokenizer, tokenized, args, compute_metrics=metrics_fn)
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
    return {"non_embedding_parameters": _non_embedding_parameters(model),
            "mean_real_tokens": round(float(np.mean(lengths)), 1),
            "tokens_per_row_fed": opts.max_seq_length if name == "baseline" else "dynamic",
            "train_seconds": round(seconds, 2), "train_samples_per_second": round(samples / seconds, 2),
            "accuracy": round(test["test_accuracy"], 4), "f1_macro": round(test["test_f1_macro"], 4)}


def _non_embedding_parameters(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


def _matmul_gflops(rows: int, hidden: int, inner: int, dtype: torch.dtype, tries: int = 5) -> float:
    """The machine's rate for the model's feed-forward matmuls (rows x hidden @ hidden x inner, and back).

    The best of ``tries`` one-second timings: the peak is what the machine can do, and a shared machine's dips
    would otherwise read as a higher MFU.
    """
    a, up = torch.randn(rows, hidden).to(dtype), torch.randn(hidden, inner).to(dtype)
    mid, down = torch.randn(rows, inner).to(dtype), torch.randn(inner, hidden).to(dtype)
    for _ in range(3):
        a @ up, mid @ down
    best = 0.0
    for _ in range(tries):
        reps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < 1.0:
            a @ up
            mid @ down
            reps += 1
        best = max(best, 2 * 2 * rows * hidden * inner * reps / elapsed / 1e9)
    return best


def _add_mfu(result: dict, peak_fp32: float, peak_bf16: float | None) -> None:
    flops = 6 * result["non_embedding_parameters"] * result["mean_real_tokens"] * result["train_samples_per_second"]
    result["model_gflops_per_second"] = round(flops / 1e9, 2)
    result["mfu"] = round(flops / 1e9 / peak_fp32, 3)
    if peak_bf16:
        result["mfu_of_bf16_peak"] = round(flops / 1e9 / peak_bf16, 3)


def _seeds(opts: argparse.Namespace) -> None:
    """``--seeds``: each arm once per seed on the same rows; mean accuracy per arm and bf16's difference per seed."""
    data = load_task_data(DataArgs(dataset_name="bundled:movie_sentiment", max_train_samples=opts.train_samples,
                                   max_predict_samples=opts.test_samples))
    bf16_ratio = cpu_bf16_speedup() if not torch.cuda.is_available() else None
    arms = opts.arms or ["tlnlp"] + (["tlnlp_bf16"] if bf16_ratio and bf16_ratio >= MIN_CPU_SPEEDUP else [])
    found: dict[str, list[dict]] = {arm: [] for arm in arms}
    for seed in opts.seeds:
        for arm in arms:
            found[arm].append(_run_arm(arm, data, argparse.Namespace(**{**vars(opts), "seed": seed})))
            print(f"seed {seed} {arm:>10}: {found[arm][-1]}", flush=True)
    summary = {arm: {"accuracy_mean": round(float(np.mean([r["accuracy"] for r in runs])), 4),
                     "accuracy_std": round(float(np.std([r["accuracy"] for r in runs])), 4),
                     "train_samples_per_second_mean": round(float(np.mean(
                         [r["train_samples_per_second"] for r in runs])), 2),
                     "accuracy_per_seed": [r["accuracy"] for r in runs]} for arm, runs in found.items()}
    both = "tlnlp" in found and "tlnlp_bf16" in found
    differences = [round(b["accuracy"] - a["accuracy"], 4) for a, b in zip(found["tlnlp"], found["tlnlp_bf16"],
                                                                            strict=True)] if both else None
    print(json.dumps({
        "benchmark": "classification_throughput_seeds", "model": "bundled:minilm", "dataset": "bundled:movie_sentiment",
        "train_samples": len(data.splits["train"]), "test_samples": len(data.splits["test"]), "epochs": opts.epochs,
        "batch_size": opts.batch_size, "torch_threads": torch.get_num_threads(), "seeds": opts.seeds,
        "cpu_bf16_over_fp32": round(bf16_ratio, 3) if bf16_ratio else None, "arms": summary,
        "bf16_accuracy_difference_per_seed": differences,
        "bf16_accuracy_difference_mean": round(float(np.mean(differences)), 4) if differences else None,
    }))


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
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="Accuracy over several seeds instead (e.g. 42 43 44 45 46): every chosen arm once per "
                             "seed, then the mean accuracy per arm and the bf16 arm's difference per seed.")
    parser.add_argument("--arms", nargs="+", default=None, choices=["baseline", "tlnlp", "tlnlp_bf16"],
                        help="Arms to run with --seeds (default: tlnlp and, where this CPU has fast bf16, tlnlp_bf16).")
    opts = parser.parse_args()
    if opts.seeds:
        _seeds(opts)
        return
    data = load_task_data(DataArgs(dataset_name="bundled:movie_sentiment", max_train_samples=opts.train_samples,
                                   max_predict_samples=opts.test_samples))
    bf16_ratio = cpu_bf16_speedup() if not torch.cuda.is_available() else None
    arms = ["baseline", "tlnlp"] + (["tlnlp_bf16"] if bf16_ratio and bf16_ratio >= MIN_CPU_SPEEDUP else [])
    config = AutoConfig.from_pretrained(bundled_model_path("minilm"))
    shapes = (config.hidden_size, config.intermediate_size)
    rows = opts.batch_size * 27  # about the mean real tokens of a batch (measured below); fixed before the arms run
    peaks = {torch.float32: [_matmul_gflops(rows, *shapes, torch.float32)], torch.bfloat16: []}
    if "tlnlp_bf16" in arms:
        peaks[torch.bfloat16].append(_matmul_gflops(rows, *shapes, torch.bfloat16))
    results = {}
    for arm in arms:
        results[arm] = _run_arm(arm, data, opts)
        print(f"{arm:>10}: {results[arm]}", flush=True)
    for dtype, found in peaks.items():  # measured again after the arms: the best of both is the peak
        if found:
            found.append(_matmul_gflops(rows, *shapes, dtype))
    peak_fp32 = max(peaks[torch.float32])
    peak_bf16 = max(peaks[torch.bfloat16]) if peaks[torch.bfloat16] else None
    for result in results.values():
        _add_mfu(result, peak_fp32, peak_bf16 if result is results.get("tlnlp_bf16") else None)
    speedup = results["tlnlp"]["train_samples_per_second"] / results["baseline"]["train_samples_per_second"]
    bf16 = results.get("tlnlp_bf16")
    print(json.dumps({
        "benchmark": "classification_throughput", "model": "bundled:minilm", "dataset": "bundled:movie_sentiment",
        "train_samples": len(data.splits["train"]), "test_samples": len(data.splits["test"]), "epochs": opts.epochs,
        "batch_size": opts.batch_size, "max_seq_length": opts.max_seq_length, "torch_threads": torch.get_num_threads(),
        "speedup": round(speedup, 3), "tlnlp_accuracy": results["tlnlp"]["accuracy"],
        "baseline_accuracy": results["baseline"]["accuracy"],
        "accuracy_difference": round(results["tlnlp"]["accuracy"] - results["baseline"]["accuracy"], 4),
        "fp32_matmul_gflops": round(peak_fp32, 2), "bf16_matmul_gflops": round(peak_bf16, 2) if peak_bf16 else None,
        "cpu_bf16_over_fp32": round(bf16_ratio, 3) if bf16_ratio else None,
        "mfu": {arm: result["mfu"] for arm, result in results.items()},
        "bf16_speedup_over_fp32": round(bf16["train_samples_per_second"] / results["tlnlp"]["train_samples_per_second"],
                                        3) if bf16 else None,
        "bf16_accuracy_difference": round(bf16["accuracy"] - results["tlnlp"]["accuracy"], 4) if bf16 else None,
        **results,
    }))


if __name__ == "__main__":
    main()
