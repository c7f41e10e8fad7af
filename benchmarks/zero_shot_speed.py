"""Zero-shot NLI speed: tlnlp's batched scorer against ``transformers.pipeline("zero-shot-classification")``.

Same model, same texts (bundled movie_sentiment test sentences), same labels, template and settings, in one run,
for 2, 6 and 20 candidate labels:

- pipeline: the transformers zero-shot pipeline as users call it (one pair per forward pass), and with
  ``batch_size`` set (its batching of pairs, without length sorting);
- tlnlp: ``tlnlp.zeroshot.score_nli`` (every pair of every text and label in length-sorted, dynamically padded
  batches under inference mode).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/zero_shot_speed.py [--model_name_or_path runs/entailment]
    python benchmarks/zero_shot_speed.py --device cuda      # both scorers on a GPU

``--model_name_or_path`` takes any NLI model folder (e.g. one from ``recipes/train_entailment.py``); by default
the bundled MiniLM gets a seeded 3-way NLI head (the architecture and cost of a MiniLM NLI cross-encoder). The last
line printed is one JSON object: ``{"results": [{"num_labels": 6, "speedup": ..., "max_abs_diff": ...}, ...]}``
where ``speedup`` is pipeline seconds / tlnlp seconds (``speedup_cpu``: the same with this process's CPU seconds,
steadier on a shared machine) and ``max_abs_diff`` the largest score difference. Each row also says where tlnlp's
time goes: ``tlnlp_tokenize_seconds`` (building the pairs), and ``tlnlp_model_gflops_per_second`` (2 x non-embedding
parameters per real token of every pair, over tlnlp's seconds) next to ``fp32_matmul_gflops``, a plain fp32 matmul of
the model's feed-forward shapes timed in the same run: their ratio, ``tlnlp_fraction_of_matmul_peak``, is how much
room is left.
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
from transformers import AutoModelForSequenceClassification, pipeline

from tlnlp.config import DataArgs
from tlnlp.models import resolve_model_path
from tlnlp.tasks import load_task_data
from tlnlp.zeroshot import DEFAULT_TEMPLATE, ScoringOptions, load_nli_model, score_nli
from tlnlp.zeroshot.nli import encode_pairs

LABELS_20 = ["positive", "negative", "business", "sports", "politics", "technology", "science", "health",
             "music", "film", "travel", "food", "education", "law", "religion", "weather", "fashion", "history",
             "family", "war"]
LABEL_SETS = {2: LABELS_20[:2], 6: LABELS_20[:6], 20: LABELS_20}


def _model(name: str, seed: int, random_init: bool):
    if name != "bundled:minilm" and not random_init:
        return load_nli_model(name, device="cpu")
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_model_path(name)
    torch.manual_seed(seed)
    id2label = {0: "contradiction", 1: "neutral", 2: "entailment"}
    labels = {"id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}
    if random_init:  # the same architecture and cost without the weights (a machine without the bundled files)
        model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(path, **labels)).eval()
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, **labels, use_safetensors=True).eval()
    return model, AutoTokenizer.from_pretrained(path)


def _timed(fn) -> tuple[object, float, float]:
    """Run ``fn``; returns its result, wall seconds and CPU seconds of this process (robust on a busy machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _pipeline_scores(pipe, texts: list[str], labels: list[str], batch_size: int) -> tuple[np.ndarray, float, float]:
    out, wall, cpu = _timed(lambda: pipe(texts, candidate_labels=labels, hypothesis_template=DEFAULT_TEMPLATE,
                                         batch_size=batch_size))
    return np.array([[row["scores"][row["labels"].index(label)] for label in labels] for row in out]), wall, cpu


def _tlnlp_scores(model, tokenizer, texts: list[str], labels: list[str],
                  batch_size: int) -> tuple[np.ndarray, float, float]:
    options = ScoringOptions(batch_size=batch_size)
    return _timed(lambda: score_nli(model, tokenizer, texts, labels, hypothesis_template=DEFAULT_TEMPLATE,
                                    options=options))


def _matmul_gflops(rows: int, hidden: int, inner: int, seconds: float = 3.0) -> float:
    """GFLOP/s of fp32 matmuls of the model's feed-forward shapes (rows x hidden @ hidden x inner, and back)."""
    a, up, mid, down = (torch.randn(rows, hidden), torch.randn(hidden, inner), torch.randn(rows, inner),
                        torch.randn(inner, hidden))
    for _ in range(3):
        a @ up, mid @ down
    reps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        a @ up
        mid @ down
        reps += 1
    return 4 * rows * hidden * inner * reps / elapsed / 1e9


def _where_time_goes(model, tokenizer, texts: list[str], labels: list[str], seconds: float) -> dict:
    """Tokenising seconds and the model FLOP rate of tlnlp's run (forward: 2 x non-embedding parameters per token)."""
    hypotheses = [DEFAULT_TEMPLATE.format(label) for label in labels]
    start = time.perf_counter()
    pairs = encode_pairs(tokenizer, [t for t in texts for _ in hypotheses], hypotheses * len(texts))
    tokenize_s = time.perf_counter() - start
    tokens = sum(len(p["input_ids"]) for p in pairs)
    params = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    return {"tlnlp_tokenize_seconds": round(tokenize_s, 2), "mean_pair_tokens": round(tokens / len(pairs), 1),
            "tlnlp_model_gflops_per_second": round(2 * params * tokens / seconds / 1e9, 2)}


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else f"{os.cpu_count()} CPUs"


def main() -> None:
    """Time both scorers on the same texts and labels; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_name_or_path", default="bundled:minilm")
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--labels", type=int, nargs="+", default=[2, 6, 20], choices=sorted(LABEL_SETS))
    parser.add_argument("--batch_size", type=int, default=64, help="pairs per forward pass (tlnlp)")
    parser.add_argument("--pipeline_batch_size", type=int, default=32, help="the batched pipeline arm (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: both scorers run there")
    parser.add_argument("--random_init", action="store_true",
                        help="seeded random weights in the model's architecture (timing needs no trained weights)")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = load_task_data(DataArgs(dataset_name="bundled:movie_sentiment"))
    texts = data.splits["test"]["text"][: opts.texts]
    model, tokenizer = _model(opts.model_name_or_path, opts.seed, opts.random_init)
    model.to(opts.device)
    pipe = pipeline("zero-shot-classification", model=model, tokenizer=tokenizer, device=torch.device(opts.device))
    _tlnlp_scores(model, tokenizer, texts[:20], LABEL_SETS[2], opts.batch_size)  # warm-up, both arms
    _pipeline_scores(pipe, texts[:20], LABEL_SETS[2], 1)
    results = []
    for num_labels in opts.labels:
        labels = LABEL_SETS[num_labels]
        ours, ours_s, ours_cpu = _tlnlp_scores(model, tokenizer, texts, labels, opts.batch_size)
        ref, ref_s, ref_cpu = _pipeline_scores(pipe, texts, labels, 1)
        row = {"num_labels": num_labels, "pairs": len(texts) * num_labels,
               "pipeline_seconds": round(ref_s, 2), "tlnlp_seconds": round(ours_s, 2),
               "speedup": round(ref_s / ours_s, 2), "pipeline_cpu_seconds": round(ref_cpu, 2),
               "tlnlp_cpu_seconds": round(ours_cpu, 2), "speedup_cpu": round(ref_cpu / max(ours_cpu, 1e-9), 2),
               "max_abs_diff": float(np.abs(ours - ref).max()),
               "same_top_label": float((ours.argmax(1) == ref.argmax(1)).mean()),
               **_where_time_goes(model, tokenizer, texts, labels, ours_s)}
        line = (f"{num_labels:>3} labels: pipeline {ref_s:7.2f} s ({ref_cpu:7.2f} CPU s) | tlnlp {ours_s:6.2f} s "
                f"({ours_cpu:6.2f} CPU s) | speedup {row['speedup']:.2f}x (CPU {row['speedup_cpu']:.2f}x)")
        if opts.pipeline_batch_size:
            name = f"pipeline_batch{opts.pipeline_batch_size}"
            batched, batched_s, batched_cpu = _pipeline_scores(pipe, texts, labels, opts.pipeline_batch_size)
            row.update({f"{name}_seconds": round(batched_s, 2), f"{name}_cpu_seconds": round(batched_cpu, 2),
                        f"speedup_vs_{name}": round(batched_s / ours_s, 2),
                        f"speedup_cpu_vs_{name}": round(batched_cpu / max(ours_cpu, 1e-9), 2),
                        f"max_abs_diff_{name}": float(np.abs(batched - ref).max())})
            line += f" | pipeline batch {opts.pipeline_batch_size} {batched_s:7.2f} s ({batched_cpu:7.2f} CPU s)"
        print(line + f" | max |diff| {row['max_abs_diff']:.2e}", flush=True)
        results.append(row)
    if opts.device == "cpu":
        rows = opts.batch_size * int(np.mean([r["mean_pair_tokens"] for r in results]))
        peak = _matmul_gflops(rows, model.config.hidden_size, model.config.intermediate_size)
        for row in results:
            row["fp32_matmul_gflops"] = round(peak, 2)
            row["tlnlp_fraction_of_matmul_peak"] = round(row["tlnlp_model_gflops_per_second"] / peak, 3)
    print(json.dumps({"model": opts.model_name_or_path, "texts": len(texts), "data": "bundled:movie_sentiment test",
                      "template": DEFAULT_TEMPLATE, "tlnlp_batch_size": opts.batch_size,
                      "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
                      "device": _device_name(opts.device),
                      "load_average_at_end": [round(x, 1) for x in os.getloadavg()], "results": results}))


if __name__ == "__main__":
    main()
