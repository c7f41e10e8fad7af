"""Zero-shot quality: a label-entailment model trained offline, and embedding similarity, against chance.

Targets: the test splits of bundled movie, amazon and tweet sentiment and of bbc_news. For each target:

- entailment: a cross-encoder trained from the bundled MiniLM on label-entailment pairs of trec6 + sms_spam,
  plus bbc_news when bbc_news is not the target (so the model never saw the target's labels), scored with
  ``tlnlp.zeroshot.score_nli`` and the target's spec (``This example is {}.``);
- embedding: mean-pooled MiniLM embeddings (as bundled, no training) against the label descriptions of the
  target's embedding spec;
- chance: uniform guessing (accuracy 1/labels) and the majority class (accuracy and macro-F1).

Each trained model is also checked against ``pipeline("zero-shot-classification")`` on a sample of the target's
texts (largest score difference). Trained models are kept in ``--work_dir`` and reused by a later run.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/zero_shot_quality.py [--max_samples_per_dataset 2000]

The last line printed is one JSON object: ``{"results": [{"target": ..., "strategy": ..., "accuracy": ...,
"f1_macro": ...}, ...], "models": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from transformers import pipeline

from tlnlp.config import DataArgs
from tlnlp.tasks import classification_metrics, load_task_data
from tlnlp.zeroshot import (
    ScoringOptions,
    evaluate_zero_shot,
    load_encoder,
    load_or_train_entailment_model,
    resolve_spec,
)

TARGETS = ["bundled:movie_sentiment", "bundled:amazon_sentiment", "bundled:tweet_sentiment", "bundled:bbc_news"]
BASE_SOURCES = ["bundled:trec6", "bundled:sms_spam"]


def _sources(target: str) -> list[str]:
    return BASE_SOURCES + ([] if target == "bundled:bbc_news" else ["bundled:bbc_news"])


def _chance(data) -> dict[str, float]:
    gold = np.asarray(data.splits["test"]["label"])
    majority = np.full_like(gold, np.bincount(gold).argmax())
    metrics = classification_metrics(gold, majority, data.num_labels)
    return {"uniform_accuracy": round(1 / data.num_labels, 4), "majority_accuracy": round(metrics["accuracy"], 4),
            "majority_f1_macro": round(metrics["f1_macro"], 4)}


def _pipeline_diff(model, tokenizer, texts: list[str], labels: list[str], spec) -> float:
    from tlnlp.zeroshot import score_nli

    pipe = pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device=-1)
    hyps = [spec.describe(label) for label in labels]
    rows = pipe(texts, candidate_labels=hyps, hypothesis_template=spec.templates[0])
    ref = np.array([[r["scores"][r["labels"].index(h)] for h in hyps] for r in rows])
    ours = score_nli(model, tokenizer, texts, labels, hypothesis_template=spec.templates[0],
                     label_descriptions=spec.label_descriptions)
    return float(np.abs(ours - ref).max())


def _entailment_model(sources: list[str], opts: argparse.Namespace) -> tuple[object, object, dict]:
    folder = Path(opts.work_dir) / ("entailment_" + "_".join(s.split(":")[-1] for s in sources))
    start = time.perf_counter()
    model, tokenizer = load_or_train_entailment_model(
        folder, train_datasets=sources, device="cpu", num_negatives=opts.num_negatives,
        max_samples_per_dataset=opts.max_samples_per_dataset, max_seq_length=opts.max_seq_length,
        num_train_epochs=opts.epochs, learning_rate=opts.learning_rate, per_device_train_batch_size=32,
        per_device_eval_batch_size=64, warmup_steps=0.1, weight_decay=0.01, seed=opts.seed, logging_steps=50,
        eval_strategy="no", disable_tqdm=True)
    info = {"folder": str(folder), "sources": sources,
            "seconds_to_train_or_load": round(time.perf_counter() - start, 1)}
    results = folder / "all_results.json"
    if results.is_file():
        saved = json.loads(results.read_text())
        info.update({k: saved[k] for k in ("train_runtime", "train_samples", "test_accuracy") if k in saved})
    return model, tokenizer, info


def main() -> None:
    """Train (or reuse) the entailment models, score every target with both strategies; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="runs/benchmarks/zero_shot_quality")
    parser.add_argument("--targets", nargs="+", default=TARGETS)
    parser.add_argument("--max_samples_per_dataset", type=int, default=2000)
    parser.add_argument("--num_negatives", type=int, default=1)
    parser.add_argument("--max_seq_length", type=int, default=128, help="entailment pairs (training and scoring)")
    parser.add_argument("--embedding_max_length", type=int, default=256, help="tokens per text for embeddings")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning_rate", type=float, default=5e-5)
    parser.add_argument("--max_test_samples", type=int, default=None, help="score at most N test rows per target")
    parser.add_argument("--pipeline_check_texts", type=int, default=24)
    parser.add_argument("--seed", type=int, default=42)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    encoder, enc_tokenizer = load_encoder("bundled:minilm", device="cpu")
    models: dict[str, dict] = {}
    results = []
    for target in opts.targets:
        data = load_task_data(DataArgs(dataset_name=target, max_predict_samples=opts.max_test_samples))
        sources = _sources(target)
        key = "+".join(sources)
        model, tokenizer, info = _entailment_model(sources, opts)
        models.setdefault(key, info)
        nli_spec = resolve_spec("auto", target, "nli")
        emb_spec = resolve_spec("auto", target, "embedding")
        chance = _chance(data)
        for strategy, (m, tok, spec) in {"entailment": (model, tokenizer, nli_spec),
                                         "embedding": (encoder, enc_tokenizer, emb_spec)}.items():
            start = time.perf_counter()
            nli = strategy == "entailment"
            options = ScoringOptions(batch_size=64,
                                     max_length=opts.max_seq_length if nli else opts.embedding_max_length)
            metrics, _ = evaluate_zero_shot("nli" if nli else "embedding", m, tok, data, spec, options)
            row = {"target": target, "strategy": strategy, "trained_on": sources if strategy == "entailment" else [],
                   "spec": spec.name, "spec_version": spec.version, "test_samples": len(data.splits["test"]),
                   "accuracy": round(metrics["accuracy"], 4), "f1_macro": round(metrics["f1_macro"], 4),
                   "seconds": round(time.perf_counter() - start, 1), **chance}
            if strategy == "entailment":
                texts = data.splits["test"]["text"][: opts.pipeline_check_texts]
                row["max_abs_diff_vs_pipeline"] = _pipeline_diff(m, tok, texts, data.labels, spec)
            print(f"{target:<26} {strategy:<10} acc {row['accuracy']:.4f}  macro-F1 {row['f1_macro']:.4f}  "
                  f"(majority acc {chance['majority_accuracy']:.4f}, F1 {chance['majority_f1_macro']:.4f}; "
                  f"uniform acc {chance['uniform_accuracy']:.4f})", flush=True)
            results.append(row)
    print(json.dumps({"torch_threads": torch.get_num_threads(), "settings": vars(opts), "models": models,
                      "results": results}))


if __name__ == "__main__":
    main()
