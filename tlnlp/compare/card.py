"""The compare run's report: zero-shot scored on each budget's rows, the recommendation, and the run's card.

A compare run's folder gets a ``README.md`` (:func:`write_card`): the data, the model, the strategies, the table,
the recommendation per budget with its regret (:func:`tlnlp.compare.summary.recommend`) and how choices were made.
Zero-shot strategies train on no labelled row, so at every label budget they are scored on the budget's own rows
(:func:`zero_shot_in_budget`): an in-budget score comparable with the other strategies' cross-validation scores.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from tlnlp.compare.args import parse_budget
from tlnlp.compare.budgets import ALL
from tlnlp.compare.cells import Cell, CellCache, cell_key
from tlnlp.compare.code_keys import strategy_code
from tlnlp.compare.selection import SEARCH_SPACES, SELECTION_VERSION
from tlnlp.compare.strategies import CellContext, get_strategy
from tlnlp.compare.summary import format_forgetting, format_markdown, format_recommendation, recommend
from tlnlp.data import seeded_subset

__all__ = ["selection_report", "write_card", "zero_shot_in_budget"]

logger = logging.getLogger(__name__)


def _zero_shot_record(ctx: CellContext, name: str, budget: int | str, seed: int, cache: CellCache) -> Any:
    """The zero-shot strategy's record on the budget's rows (cached; None under ``report_only`` when missing)."""
    strategy = get_strategy(name)
    config = {"in_budget_of": name, "budget": budget, "seed": None if budget == ALL else seed,
              "model": ctx.model_args.model_name_or_path, "data": ctx.data.fingerprint,
              "version": SELECTION_VERSION, **strategy.settings(ctx, 0)}
    key, code = cell_key(config), strategy_code(name)
    found = cache.get(key, None if ctx.args.report_only else code)  # report_only: also what older code computed
    if found is None and not ctx.args.report_only:
        rows = ctx.data.splits["train"].select(ctx.budget_rows(budget, seed))
        # the strategy scores ``test`` (entailment: ``prompt_test``): here the budget's rows, never the test split
        on_rows = dataclasses.replace(ctx, test=rows, prompt_test=seeded_subset(rows, ctx.args.prompt_test_samples,
                                                                               seed), _tokenized={})
        cache.put(key, strategy.run(on_rows, Cell(name, 0, seed, config)), code)
        found = cache.get(key, code)
    return found


def zero_shot_in_budget(ctx: CellContext, cache_dir: str | Path) -> dict[tuple[int | str, str], list[float]]:
    """Each zero-shot strategy's score (``--metric``) on every budget's k-shot rows, per seed.

    Entailment zero-shot is scored on at most ``--prompt_test_samples`` of the rows (seeded), as on the test split.
    Scores are cached under ``<cache_dir>/in_budget``.

    Returns:
        ``(strategy, budget) -> scores`` (one per seed; one for ``all``, whose rows no seed changes).
    """
    cache = CellCache(Path(cache_dir) / "in_budget")
    found: dict[tuple[Any, Any], list[float]] = {}
    names = [n for n in ctx.args.strategies if get_strategy(n).kind == "zero_shot"]
    for name in names:
        for budget in (parse_budget(b) for b in ctx.args.budgets):
            for seed in ctx.args.seeds[:1] if budget == ALL else ctx.args.seeds:
                record = _zero_shot_record(ctx, name, budget, seed, cache)
                if record is not None:
                    found.setdefault((name, budget), []).append(float(record["metrics"][ctx.args.metric]))
    return found


def selection_report(ctx: CellContext, rows: list[dict[str, Any]], cache_dir: str | Path) -> dict[str, Any]:
    """``selection`` (the settings and search spaces) and ``recommendation`` of a run, for its table and card."""
    args = ctx.args
    in_budget = zero_shot_in_budget(ctx, cache_dir) if args.selection != "none" else {}
    spaces = {family: space for family, space in SEARCH_SPACES.items() if args.selection in space["modes"]}
    return {"selection": {"mode": args.selection, "max_folds": args.selection_folds, "metric": args.metric,
                          "search_spaces": spaces},
            "recommendation": recommend(rows, in_budget, args.metric)}


def _selection_text(selection: dict[str, Any]) -> str:
    if selection.get("mode", "none") == "none":
        return ("No in-budget selection (`--selection none`): every cell ran at its method's settings, and no "
                "strategy has an in-budget score to recommend by.")
    lines = [f"Mode `{selection['mode']}`: choices made by stratified k-fold cross-validation (k at most "
             f"{selection['max_folds']}, fewer when the smallest class has fewer rows) on each cell's own k-shot rows, "
             f"scored by out-of-fold {selection['metric']} (ties: lower log-loss, then the default); then one "
             "training on every k-shot row with the choice, and one score on the test split. No test label reaches "
             "a choice. Search spaces (the first point is the default):", ""]
    for family, space in selection["search_spaces"].items():
        points = "; ".join(", ".join(f"{k} {v:g}" for k, v in p.items()) for p in space["grid"])
        then = f"; {space['then']} chosen after the rest, among the chosen point's values" if space.get("then") else ""
        lines.append(f"- {family} ({space['repeats']} repeat(s)): {points}{then}")
    return "\n".join(lines)


def _candidates_text(recommendation: list[dict[str, Any]]) -> list[str]:
    """One line per budget: every candidate's in-budget score, best first."""
    lines = []
    for entry in recommendation:
        scores = sorted(entry["in_budget_scores"].items(), key=lambda item: -item[1])
        if scores:
            lines.append(f"- In-budget scores at {entry['budget']} labels/class: "
                         + ", ".join(f"{name} {score:.4f}" for name, score in scores) + ".")
    return [*lines, ""] if lines else []


def write_card(out_dir: str | Path, ctx: CellContext, rows: list[dict[str, Any]], extra: dict[str, Any]) -> Path:
    """Write the run's ``README.md``: data, model, strategies, table, recommendation and regret, selection.

    Args:
        out_dir: The compare run's folder.
        ctx: The run's context (data, model and compare settings).
        rows: The table rows.
        extra: What the table's JSON holds (``strategies`` legend, ``warnings``, ``selection``, ``recommendation``).
    """
    args, data = ctx.args, ctx.data
    legend = "\n".join(f"- `{name}`: {text}" for name, text in extra.get("strategies", {}).items())
    forgetting = format_forgetting(rows)
    regrets = [e["regret"] for e in extra.get("recommendation", []) if e.get("pick") is not None]
    parts = [
        f"# Transfer ladder: {data.name} with {ctx.model_args.model_name_or_path}", "",
        f"Every strategy on the same test split ({len(ctx.test)} rows) at label budgets {', '.join(args.budgets)} "
        f"(labelled rows per class, nested) and seeds {', '.join(str(s) for s in args.seeds)}.", "",
        "## Data and model", "",
        f"- Data: `{data.name}` (version {data.version}, fingerprint `{data.fingerprint}`), labels: "
        f"{', '.join(data.labels)}; {len(data.splits['train'])} training rows.",
        f"- Model: `{ctx.model_args.model_name_or_path}`; metric of the flags and the recommendation: {args.metric}.",
        "", "## Strategies", "", legend, "", "## Results", "", format_markdown(rows), "",
        "## Recommendation", "",
        "Per budget, the strategy the ladder would pick from the in-budget scores alone (cross-validation on the "
        "k-shot rows; zero-shot scored on those rows), and its regret: the test-score gap between the pick and the "
        "test-best strategy. That is the honest measure of the ladder's advice.", "",
        format_recommendation(extra.get("recommendation", [])) or "No labelled budget.", "",
        *_candidates_text(extra.get("recommendation", [])),
    ]
    if regrets:
        parts += [f"Mean regret over {len(regrets)} budget(s): {sum(regrets) / len(regrets):.4f} {args.metric}.", ""]
    parts += ["## In-budget selection", "", _selection_text(extra.get("selection", {})), ""]
    if forgetting:
        parts += ["## Forgetting check (general text, fixed LM head)", "", forgetting, ""]
    if extra.get("warnings"):
        parts += ["## Warnings", "", *[f"- {w}" for w in extra["warnings"]], ""]
    path = Path(out_dir) / "README.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
