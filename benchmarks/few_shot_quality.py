"""Few-shot quality: bundled SmolLM2 at 0, 1, 4 and 8 demonstrations per class, raw vs calibrated, over 5 seeds.

On bundled movie_sentiment, trec6 and sms_spam, with each corpus's built-in prompt spec, every cell runs
:func:`tlnlp.fewshot.evaluate_few_shot` (one demonstration sample per seed, shared-prefix scoring) and reports
the mean and sample std over the seeds of accuracy and macro-F1, with raw label probabilities and with
contextual calibration (content-free inputs "N/A", "", "[MASK]"). 0-shot is one run (every seed gives the same
prompt). A seeded subset of the test split is scored (``--examples``), the same rows in every cell.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/few_shot_quality.py [--examples 200] [--work_dir runs/fsq]

Finished cells are stored in ``--work_dir`` and skipped when the script is run again. The last line is one JSON
object: ``{"results": [{"dataset": ..., "shots": ..., "raw": {...}, "calibrated": {...}}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from tlnlp.config import DataArgs, ModelArgs
from tlnlp.fewshot import FewShotOptions, evaluate_few_shot, load_causal_lm, resolve_spec
from tlnlp.tasks import load_task_data


def run_cell(model, tokenizer, data, shots: int, opts: argparse.Namespace) -> dict:
    spec = resolve_spec("auto", data.name)
    start = time.perf_counter()
    options = FewShotOptions(shots=shots, seeds=list(range(opts.seeds)), orders=1, batch_size=opts.batch_size,
                             show_progress=False)
    report = evaluate_few_shot(model, tokenizer, spec, data.splits["train"], data.splits["test"], options)
    summary = report.summary()
    cell = {"dataset": data.name, "num_labels": data.num_labels, "shots": shots, "examples": len(data.splits["test"]),
            "runs": len(report.runs), "spec": spec.name, "spec_version": spec.version,
            "seconds": round(time.perf_counter() - start, 1)}
    for name, variant in (("raw", "sum_raw"), ("calibrated", "sum_calibrated")):
        cell[name] = {f"{metric}_{stat}": round(summary[variant][metric][stat], 4)
                      for metric in ("accuracy", "f1_macro") for stat in ("mean", "std")}
    cell["per_run_calibrated_accuracy"] = [round(r.metrics["sum_calibrated"]["accuracy"], 4) for r in report.runs]
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="seeded subset of each test split")
    parser.add_argument("--datasets", nargs="+", default=["movie_sentiment", "trec6", "sms_spam"])
    parser.add_argument("--shots", nargs="+", type=int, default=[0, 1, 4, 8], help="demonstrations per class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--work_dir", default="runs/few_shot_quality")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(opts.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_causal_lm(ModelArgs(model_name_or_path="bundled:smollm2"))
    results = []
    for name in opts.datasets:
        data = load_task_data(DataArgs(dataset_name=f"bundled:{name}", max_predict_samples=opts.examples))
        for shots in opts.shots:
            path = work / f"{name}_{shots}shot_{opts.seeds}seeds_{opts.examples}ex.json"
            if path.is_file():
                cell = json.loads(path.read_text())
            else:
                cell = run_cell(model, tokenizer, data, shots, opts)
                path.write_text(json.dumps(cell, indent=2))
            results.append(cell)
            raw, cal = cell["raw"], cell["calibrated"]
            print(f"{name:16s} {shots}-shot ({cell['runs']} runs, {cell['seconds']}s): accuracy raw "
                  f"{raw['accuracy_mean']:.3f} ± {raw['accuracy_std']:.3f}, calibrated {cal['accuracy_mean']:.3f} ± "
                  f"{cal['accuracy_std']:.3f}; macro-F1 raw {raw['f1_macro_mean']:.3f}, calibrated "
                  f"{cal['f1_macro_mean']:.3f}", flush=True)
    print(json.dumps({"results": results, "model": "bundled:smollm2", "seeds": opts.seeds,
                      "examples_per_dataset": opts.examples}))


if __name__ == "__main__":
    main()
