"""Few-shot scoring speed: shared-prefix KV-cache scoring against naive per-candidate scoring, same model, one run.

Bundled SmolLM2-135M-Instruct, k demonstrations per class (default 4), 200 test examples, on a 2-label corpus
(bundled movie_sentiment) and a 6-label one (bundled trec6). Both paths score the same token ids:

- naive: one full ``demonstrations + example + label word`` sequence per example and label word (batched);
- tlnlp: the demonstration prefix encoded once, its key/value cache copied for each batch of examples, every
  label word scored from the end of each example (:func:`tlnlp.fewshot.score_continuations`).

The examples are timed in chunks, alternating the two paths, so a change in machine load affects both alike.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/few_shot_speed.py [--examples 200] [--shots 4]

The last line is one JSON object: ``{"results": [{"num_labels": 2, "speedup": ..., "max_abs_diff": ...}, ...]}``
(target: speedup >= 5 with max_abs_diff <= 1e-3).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time

import numpy as np
import torch

from tlnlp.config import DataArgs, ModelArgs
from tlnlp.fewshot import encode_prompts, load_causal_lm, resolve_spec, sample_demonstrations, score_continuations
from tlnlp.tasks import load_task_data


def _time(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_dataset(name: str, model, tokenizer, opts: argparse.Namespace) -> dict:
    data = load_task_data(DataArgs(dataset_name=f"bundled:{name}", max_predict_samples=opts.examples))
    spec = resolve_spec("auto", data.name)
    train, test = data.splits["train"], data.splits["test"]
    demos = [(train[i], data.labels[train[i]["label"]]) for i in sample_demonstrations(train, opts.shots, opts.seed)]
    rows = [{field: test[i][field] for field in spec.fields} for i in range(len(test))]
    enc = encode_prompts(tokenizer, spec, demos, rows, data.labels)
    shared_parts, naive_parts, shared_s, naive_s = [], [], 0.0, 0.0
    for lo in range(0, len(rows), opts.chunk):
        contexts = enc.contexts[lo: lo + opts.chunk]
        scores, seconds = _time(lambda c=contexts: score_continuations(
            model, enc.prefix, c, enc.continuations, batch_size=opts.batch_size))
        shared_parts.append(scores)
        shared_s += seconds
        scores, seconds = _time(lambda c=contexts: score_continuations(
            model, enc.prefix, c, enc.continuations, batch_size=opts.batch_size, shared_prefix=False))
        naive_parts.append(scores)
        naive_s += seconds
        print(f"{name}: {min(lo + opts.chunk, len(rows))}/{len(rows)} examples, shared {shared_s:.1f}s, naive "
              f"{naive_s:.1f}s", flush=True)
    shared, naive = np.concatenate(shared_parts), np.concatenate(naive_parts)
    owners = np.asarray(enc.candidate_labels)
    gold = np.asarray(test["label"])
    accuracy = float((owners[shared.argmax(axis=1)] == gold).mean())
    return {"dataset": data.name, "num_labels": data.num_labels, "examples": len(rows),
            "demonstrations": len(demos), "prefix_tokens": len(enc.prefix),
            "mean_example_tokens": round(float(np.mean([len(c) for c in enc.contexts])), 1),
            "shared_seconds": round(shared_s, 2), "naive_seconds": round(naive_s, 2),
            "speedup": round(naive_s / shared_s, 2), "max_abs_diff": float(np.abs(shared - naive).max()),
            "raw_accuracy": round(accuracy, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--shots", type=int, default=4, help="demonstrations per class")
    parser.add_argument("--datasets", nargs="+", default=["movie_sentiment", "trec6"])
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=50, help="examples per alternating timing chunk")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model, tokenizer = load_causal_lm(ModelArgs(model_name_or_path="bundled:smollm2"))
    results = [bench_dataset(name, model, tokenizer, opts) for name in opts.datasets]
    for row in results:
        print(f"{row['dataset']} ({row['num_labels']} labels, {row['prefix_tokens']} prefix tokens): shared "
              f"{row['shared_seconds']}s, naive {row['naive_seconds']}s, speedup {row['speedup']}x, max |diff| "
              f"{row['max_abs_diff']:.2e}")
    print(json.dumps({"results": results, "model": "bundled:smollm2", "shots_per_class": opts.shots,
                      "batch_size": opts.batch_size, "torch_threads": torch.get_num_threads(),
                      "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                      "target": {"speedup": 5.0, "max_abs_diff": 1e-3}}))


if __name__ == "__main__":
    main()
