"""Aggregate cells over seeds, flag negative transfer, recommend a strategy per budget, and write the tables.

The recommendation (:func:`recommend`) names, per label budget, the strategy the ladder would pick from the
in-budget scores alone (cross-validation on the k-shot rows, :mod:`tlnlp.compare.selection`), and its regret: how
far the pick's test score falls below the test-best strategy's. No test score takes part in a pick.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.compare.budgets import budget_sort_key
from tlnlp.config.run_folder import write_text_atomic

__all__ = ["COLUMNS", "aggregate", "flag_negative_transfer", "format_forgetting", "format_markdown",
           "format_recommendation", "recommend", "write_tables"]

logger = logging.getLogger(__name__)

#: Table columns: (key in a row, header).
COLUMNS: list[tuple[str, str]] = [
    ("strategy", "strategy"), ("budget", "labels/class"), ("n_train", "train rows"), ("n_test", "test rows"),
    ("seeds", "seeds"), ("accuracy", "accuracy"), ("f1_macro", "macro-F1"), ("cv_score", "cv score"),
    ("chosen", "chosen"), ("train_time_s", "train s"),
    ("inference_ms_per_example", "infer ms/ex"), ("trainable_parameters", "trainable params"),
    ("peak_memory_mb", "peak MB"), ("lm_change_pct", "LM ppl change"), ("flags", "flags"),
]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


#: Short names of chosen parameters in the table.
_PARAM_NAMES = {"learning_rate": "lr", "epochs": "epochs", "C": "C", "head_prior_strength": "prior",
                "self_training_per_class": "self-trained/class"}


def _params_text(params: dict[str, Any]) -> str:
    """``lr 5e-05, epochs 40``: the known parameters first, in a fixed order (a cached record's keys are sorted)."""
    order = list(_PARAM_NAMES)
    keys = sorted(params, key=lambda k: (order.index(k) if k in order else len(order), k))
    return ", ".join(f"{_PARAM_NAMES.get(k, k)} {params[k]:g}" if isinstance(params[k], float | int)
                     else f"{k} {params[k]}" for k in keys)


def _selection_fields(records: list[dict[str, Any]]) -> dict[str, Any]:
    """In-budget selection over seeds: the CV score's mean and std, the most common choice, the seconds spent."""
    selections = [r["selection"] for r in records if r.get("selection")]
    if not selections:
        return {}
    found: dict[str, Any] = {"cv_metric": selections[0].get("metric"),
                             "selection_time_s": float(np.mean([r.get("selection_time_s", 0.0) for r in records]))}
    scores = [s["cv_score"] for s in selections if s.get("cv_score") is not None]
    if scores:
        found["cv_score_mean"], found["cv_score_std"] = _mean_std(scores)
        found["cv_seeds"] = len(scores)
        losses = [s["cv_log_loss"] for s in selections if s.get("cv_log_loss") is not None]
        if losses:
            found["cv_log_loss_mean"] = float(np.mean(losses))
    chosen = Counter(_params_text(s["chosen"]) for s in selections)
    text, count = chosen.most_common(1)[0]
    found["chosen"] = text if count == len(selections) else f"{text} ({count}/{len(selections)} seeds)"
    return found


def _row(strategy: str, kind: str, budget: int | str, records: list[dict[str, Any]]) -> dict[str, Any]:
    acc = _mean_std([r["metrics"]["accuracy"] for r in records])
    f1 = _mean_std([r["metrics"]["f1_macro"] for r in records])
    row: dict[str, Any] = {
        "strategy": strategy, "kind": kind, "budget": budget, "seeds": len(records),
        "n_train": float(np.mean([r.get("n_train", 0) for r in records])),
        "n_test": int(records[0].get("n_test", 0)), "num_labels": int(records[0].get("num_labels", 0)),
        "accuracy_mean": acc[0], "accuracy_std": acc[1], "f1_macro_mean": f1[0], "f1_macro_std": f1[1],
        "train_time_s": float(np.mean([r.get("train_time_s", 0.0) for r in records])),
        "inference_ms_per_example": 1000 * float(np.mean([r.get("inference_s_per_example", 0.0) for r in records])),
        "trainable_parameters": int(max(r.get("trainable_parameters", 0) for r in records)),
        "peak_memory_mb": float(max(r.get("peak_memory_mb", 0.0) for r in records)),
        "memory_kind": records[0].get("memory_kind"), "flags": [], **_selection_fields(records),
    }
    forgetting = [r["forgetting"] for r in records if r.get("forgetting")]
    if forgetting:
        row["lm_measure"] = forgetting[0]["measure"]
        row["lm_before"] = float(forgetting[0]["before"])
        row["lm_after"] = float(np.mean([f["after"] for f in forgetting]))
        row["lm_change_pct"] = float(np.mean([f["change_pct"] for f in forgetting]))
    return row


def aggregate(slots: list[tuple[str, str, int | str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (strategy, budget): mean and std over seeds of every metric and cost.

    Args:
        slots: ``(strategy, kind, budget, record)`` for every cell of the ladder (a record may fill several
            slots, e.g. a zero-shot cell or a few-shot cell whose budget exceeds its demonstrations).

    Returns:
        Rows sorted by budget (zero-shot first, ``"all"`` last), then by strategy order of appearance.
    """
    order: dict[str, int] = {}
    groups: dict[tuple[str, int | str], list[dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    for strategy, kind, budget, record in slots:
        order.setdefault(strategy, len(order))
        kinds[strategy] = kind
        groups.setdefault((strategy, budget), []).append(record)
    keys = sorted(groups, key=lambda sb: (budget_sort_key(sb[1]), order[sb[0]]))
    return [_row(s, kinds[s], b, groups[(s, b)]) for s, b in keys]


def _below(row: dict[str, Any], ref: dict[str, Any], metric: str, margin: float) -> bool:
    gap = ref[f"{metric}_mean"] - row[f"{metric}_mean"]
    return gap > row[f"{metric}_std"] + ref[f"{metric}_std"] + margin


def flag_negative_transfer(rows: list[dict[str, Any]], metric: str = "accuracy",
                           margin: float = 0.0) -> list[str]:
    """Flag strategies whose mean is below from-scratch (same budget) or below zero-shot, beyond the spread.

    A row is flagged when ``reference_mean - row_mean > row_std + reference_std + margin`` (std over seeds).
    From-scratch and zero-shot rows are references and are not flagged themselves. Flags are added to each row's
    ``flags`` list and logged as warnings.

    Returns:
        The warning messages.
    """
    scratch = {r["budget"]: r for r in rows if r["kind"] == "reference"}
    zero = [r for r in rows if r["kind"] == "zero_shot"]
    best_zero = max(zero, key=lambda r: r[f"{metric}_mean"]) if zero else None
    messages = []
    for row in rows:
        if row["kind"] in ("reference", "zero_shot"):
            continue
        refs = [r for r in (scratch.get(row["budget"]), best_zero) if r is not None]
        for ref in refs:
            if _below(row, ref, metric, margin):
                row["flags"].append(f"below {ref['strategy']}")
                messages.append(
                    f"Negative transfer: {row['strategy']} at {row['budget']} labels/class has {metric} "
                    f"{row[f'{metric}_mean']:.4f} +/- {row[f'{metric}_std']:.4f}, below {ref['strategy']} "
                    f"({ref[f'{metric}_mean']:.4f} +/- {ref[f'{metric}_std']:.4f}) beyond the seeds' spread.")
    for message in messages:
        logger.warning(message)
    return messages


def _cell_text(row: dict[str, Any], key: str) -> str:
    if key in ("accuracy", "f1_macro"):
        mean, std = row[f"{key}_mean"], row[f"{key}_std"]
        return f"{mean:.4f} ± {std:.4f}" if row["seeds"] > 1 else f"{mean:.4f}"
    if key == "cv_score":
        if row.get("cv_score_mean") is None:
            return ""
        mean, std = row["cv_score_mean"], row["cv_score_std"]
        return f"{mean:.4f} ± {std:.4f}" if row.get("cv_seeds", 1) > 1 else f"{mean:.4f}"
    if key == "chosen":
        return row.get("chosen", "")
    value = row.get(key)
    if key == "budget":
        return "0 (zero-shot)" if value == 0 else str(value)
    if key == "flags":
        return ", ".join(value) if value else ""
    if key == "lm_change_pct":
        return "" if value is None else f"{value:+.1f}%"
    if key == "n_train":
        return f"{value:.0f}"
    if key == "trainable_parameters":
        return f"{value:,}" if value else "0"
    if isinstance(value, float):
        return f"{value:.1f}" if key != "inference_ms_per_example" else f"{value:.2f}"
    return str(value)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The table as GitHub markdown (mean ± std over seeds; flags in the last column)."""
    header = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [header, rule]
    lines += ["| " + " | ".join(_cell_text(row, key) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def format_forgetting(rows: list[dict[str, Any]]) -> str:
    """The forgetting check per strategy: the LM score before, and after fine-tuning at each budget (markdown)."""
    by_strategy: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("lm_change_pct") is not None:
            by_strategy.setdefault(row["strategy"], []).append(row)
    if not by_strategy:
        return ""
    lines = ["| strategy | measure | pretrained | after fine-tuning (labels/class: score, change) |",
             "|---|---|---|---|"]
    for strategy, mine in by_strategy.items():
        after = "; ".join(f"{r['budget']}: {r['lm_after']:.1f} ({r['lm_change_pct']:+.1f}%)" for r in mine)
        lines.append(f"| {strategy} | {mine[0]['lm_measure']} | {mine[0]['lm_before']:.1f} | {after} |")
    return "\n".join(lines)


def _mean(values: Sequence[float] | None) -> float | None:
    return float(np.mean(values)) if values else None


def recommend(rows: list[dict[str, Any]], in_budget: dict[tuple[str, int | str], list[float]] | None = None,
              metric: str = "accuracy") -> list[dict[str, Any]]:
    """Per label budget: the strategy picked by in-budget scores alone, the test-best one, and the regret.

    A strategy's in-budget score is its CV score on the budget's rows (``cv_score_mean``, mean over seeds), or for a
    zero-shot strategy (a budget-0 row, usable at every budget) its score on the budget's rows (``in_budget``),
    which it never trained on. Strategies without one (no selection, few-shot prompting) are not candidates but
    may be the test-best. Ties go to the lower CV log-loss (a zero-shot score has none and loses them), then to the
    earlier row.

    Args:
        rows: Table rows (:func:`aggregate`).
        in_budget: ``(strategy, budget) -> scores over seeds`` of the zero-shot strategies on the budget's rows.
        metric: ``accuracy`` or ``f1_macro``; the in-budget scores are in the same metric.

    Returns:
        One dict per labelled budget: ``budget``, ``metric``, ``in_budget_scores`` (the candidates), ``pick``,
        ``pick_score`` (in-budget), ``pick_test``, ``test_best``, ``test_best_score`` and ``regret`` (test-best minus
        the pick's test score); ``pick`` is None when no strategy has an in-budget score.
    """
    zero = [r for r in rows if r["budget"] == 0]
    found = []
    for budget in sorted({r["budget"] for r in rows if r["budget"] != 0}, key=budget_sort_key):
        here = [r for r in rows if r["budget"] == budget] + zero
        scores: dict[str, float] = {}
        losses = {row["strategy"]: row.get("cv_log_loss_mean") for row in here if row["budget"] == budget}
        for row in here:
            score = row.get("cv_score_mean") if row["budget"] == budget else _mean(
                (in_budget or {}).get((row["strategy"], budget)))
            if score is not None:
                scores[row["strategy"]] = score
        test = {row["strategy"]: row[f"{metric}_mean"] for row in here}
        best = max(test, key=lambda name: test[name])
        entry: dict[str, Any] = {"budget": budget, "metric": metric, "in_budget_scores": scores, "pick": None,
                                 "test_best": best, "test_best_score": test[best]}
        if scores:
            loss = {name: value for name, value in losses.items() if value is not None}
            pick = max(scores, key=lambda name: (scores[name], -loss.get(name, float("inf"))))
            entry.update(pick=pick, pick_score=scores[pick], pick_test=test[pick], regret=test[best] - test[pick])
        found.append(entry)
    return found


def format_recommendation(recommendation: list[dict[str, Any]]) -> str:
    """The recommendation per budget as a markdown table (pick, its scores, the test-best, the regret)."""
    if not recommendation:
        return ""
    metric = recommendation[0]["metric"]
    lines = [f"| labels/class | pick (in-budget {metric}) | pick's test {metric} | test-best | test-best's {metric} | "
             "regret | candidates |", "|---|---|---|---|---|---|---|"]
    for entry in recommendation:
        best = f"{entry['test_best']} | {entry['test_best_score']:.4f}"
        if entry["pick"] is None:
            lines.append(f"| {entry['budget']} | none (no in-budget score) |  | {best} |  | 0 |")
            continue
        lines.append(f"| {entry['budget']} | {entry['pick']} ({entry['pick_score']:.4f}) | {entry['pick_test']:.4f} | "
                     f"{best} | {entry['regret']:.4f} | {len(entry['in_budget_scores'])} |")
    return "\n".join(lines)


def write_tables(rows: list[dict[str, Any]], out_dir: str | Path,
                 extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``compare_table.md``, ``compare_table.csv`` and ``compare_table.json``; returns their paths.

    ``extra`` goes into the JSON file; its ``recommendation`` (:func:`recommend`) is also a section of the markdown.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "compare_table.md", "csv": out / "compare_table.csv", "json": out / "compare_table.json"}
    forgetting = format_forgetting(rows)
    text = format_markdown(rows) + "\n" + (f"\nForgetting check (general text, fixed LM head):\n\n{forgetting}\n"
                                          if forgetting else "")
    if (extra or {}).get("recommendation"):
        text += f"\nRecommendation (in-budget scores only; regret against the test-best):\n\n" \
                f"{format_recommendation(extra['recommendation'])}\n"
    fields = sorted({key for row in rows for key in row}, key=lambda k: (k not in dict(COLUMNS), k))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("; ".join(v) if isinstance(v, list) else v) for k, v in row.items()})
    # each file whole or not at all: a reader (or a rerun after a kill) never sees half a table
    write_text_atomic(paths["markdown"], text)
    write_text_atomic(paths["csv"], table.getvalue())
    write_text_atomic(paths["json"], json.dumps({"rows": rows, **(extra or {})}, indent=2, default=str))
    return paths
