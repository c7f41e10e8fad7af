"""Does ``--hp_search optuna --hp_trials 8`` find settings at least as good on validation as the shipped config?

Bundled TREC-6 questions and the bundled MiniLM with the shipped ``recipes/configs/classification/trec6_minilm.yaml``
at 32 labelled questions per class (``--train_samples_per_class 32``). Two runs of the classification recipe, in
this process, on the same rows (same data flags and split seed, so the same training and validation rows):

  shipped   the config as it is
  search    the config plus ``--hp_search optuna --hp_trials 8`` (the built-in space of ``--method full``:
            learning rate, epochs, weight decay, warm-up); the final model trains with the best trial's values

Both report their validation accuracy (``eval_accuracy``); the search also reports its best trial's objective and
whether that trial is trial 0 (the config's own values, which a search always tries first) or a searched one. The
test split is never used by the search; the final runs' test accuracies are printed for information only.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/hp_search_trec6.py [--trials 8] [--per_class 32]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from benchmarks.machine import machine_info  # noqa: E402
from tlnlp.config import parse_args  # noqa: E402

CONFIG = ROOT / "recipes" / "configs" / "classification" / "trec6_minilm.yaml"
QUIET = ["--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true", "--dataloader_num_workers", "0"]


def _recipe() -> Any:
    spec = importlib.util.spec_from_file_location("recipe_classification", ROOT / "recipes" / "classification.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run(recipe: Any, out: Path, per_class: int, *extra: str) -> tuple[dict[str, float], float]:
    args = ["--config", str(CONFIG), "--output_dir", str(out), "--train_samples_per_class", str(per_class), *QUIET,
            *extra]
    start = time.perf_counter()
    metrics = recipe.main(*parse_args(*recipe.ARGUMENTS, args=args, defaults=recipe.DEFAULTS))
    return metrics, time.perf_counter() - start


def _trials(folder: Path) -> list[dict[str, str]]:
    lines = (folder / "trials.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--per_class", type=int, default=32)
    parser.add_argument("--keep", default=None, help="Write the runs here (default: a temporary folder).")
    opts = parser.parse_args()
    recipe = _recipe()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(opts.keep or tmp)
        shipped, shipped_s = _run(recipe, base / "shipped", opts.per_class)
        searched, search_s = _run(recipe, base / "search", opts.per_class, "--hp_search", "optuna", "--hp_trials",
                                  str(opts.trials))
        trials = _trials(base / "search" / "hp_search")
        best_trial = int(searched["hp_search_best_trial"])
        scores = {int(t["trial"]): float(t["eval_accuracy"]) for t in trials if t["eval_accuracy"]}
        others = [score for number, score in scores.items() if number != 0]
        print((base / "search" / "hp_search" / "trials.md").read_text(encoding="utf-8"))
        result = {
            "benchmark": "hp_search_trec6", "config": str(CONFIG.relative_to(ROOT)), "per_class": opts.per_class,
            "trials": opts.trials, "validation_rows": shipped.get("eval_samples"),
            "shipped_eval_accuracy": shipped["eval_accuracy"],
            "search_best_eval_accuracy": searched["hp_search_best_eval_accuracy"],
            "search_final_eval_accuracy": searched["eval_accuracy"],
            "search_trial0_eval_accuracy": scores.get(0), "best_trial": best_trial,
            "best_searched_trial_eval_accuracy": max(others) if others else None,
            "at_least_as_good": searched["hp_search_best_eval_accuracy"] >= shipped["eval_accuracy"],
            "shipped_test_accuracy": shipped.get("test_accuracy"),
            "search_test_accuracy": searched.get("test_accuracy"),
            "shipped_wall_s": round(shipped_s, 1), "search_wall_s": round(search_s, 1), "machine": machine_info(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
