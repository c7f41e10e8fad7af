"""``run_compare``: plan the ladder's cells, run the missing ones with progress, and write the report."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from tlnlp.compare.args import CompareArgs, parse_budget
from tlnlp.compare.budgets import ALL
from tlnlp.compare.card import selection_report, write_card
from tlnlp.compare.cells import Cell, CellCache
from tlnlp.compare.code_keys import strategy_code
from tlnlp.compare.executors import ContextSpec, run_cells
from tlnlp.compare.forgetting import ForgettingProbe, general_texts
from tlnlp.compare.measure import resolve_device
from tlnlp.compare.plots import plot_cost_accuracy, plot_learning_curves
from tlnlp.compare.strategies import CellContext, get_strategy
from tlnlp.compare.summary import aggregate, flag_negative_transfer, format_markdown, write_tables
from tlnlp.config import write_run_config
from tlnlp.config.run_folder import check_finished, claim_output_dir, close_output_dir, has_content, refuse_busy
from tlnlp.data import DataError, seeded_subset
from tlnlp.models import load_tokenizer, resolve_model_path
from tlnlp.runs import environment_info, write_json
from tlnlp.tasks import load_task_data
from tlnlp.training import OutputDirError

if TYPE_CHECKING:
    from tlnlp.config import DataArgs, ModelArgs

__all__ = ["CompareResult", "plan_cells", "run_compare"]

logger = logging.getLogger(__name__)

_MARKER = "compare_run.json"


@dataclass
class CompareResult:
    """What a compare run produced.

    Attributes:
        rows: One row per (strategy, budget), aggregated over seeds (see :func:`tlnlp.compare.aggregate`).
        records: Every cell's record, in plan order.
        warnings: Negative-transfer messages.
        paths: Written files by name (markdown, csv, json, learning_curve, cost_accuracy).
        markdown: The table as markdown.
        cells_run: Cells computed in this run (the rest came from the cache).
        recommendation: Per label budget, the strategy picked by in-budget scores and its regret
            (:func:`tlnlp.compare.summary.recommend`).
    """

    rows: list[dict[str, Any]]
    records: list[dict[str, Any]]
    warnings: list[str]
    paths: dict[str, Path]
    markdown: str
    cells_run: int = 0
    slots: list[tuple[str, str, int | str, str]] = field(default_factory=list)
    recommendation: list[dict[str, Any]] = field(default_factory=list)


def plan_cells(ctx: CellContext) -> tuple[list[Cell], list[tuple[str, str, int | str, str]]]:
    """The unique cells to compute, and the table slots ``(strategy, kind, budget, cell key)`` they fill.

    Budgets run from small to large, seeds in order, strategies in the given order, so a partial run already
    holds whole small-budget ladders. Zero-shot strategies get one budget-0 cell; strategies whose result does
    not depend on the seed get one cell per budget.
    """
    args = ctx.args
    budgets = sorted((parse_budget(b) for b in args.budgets), key=lambda b: float("inf") if b == ALL else b)
    cells: dict[str, Cell] = {}
    slots = []
    for budget in budgets:
        for seed in args.seeds:
            for name in args.strategies:
                strategy = get_strategy(name)
                if not strategy.uses_labels and budget != budgets[0]:
                    continue
                cell_budget = budget if strategy.uses_labels else 0
                cell_seed = seed if strategy.seeded else None
                if cell_seed is None and seed != args.seeds[0]:
                    continue
                config = {"strategy": name, "budget": cell_budget, "seed": cell_seed,
                          "model": ctx.model_args.model_name_or_path, "data": ctx.data.fingerprint,
                          "test_rows": len(ctx.test), **strategy.settings(ctx, cell_budget)}
                cell = Cell(name, config["budget"], seed if cell_seed is not None else 0, config,
                            code=strategy_code(name))
                cells.setdefault(cell.key, cell)
                slots.append((name, strategy.kind, cell_budget, cell.key))  # the table row keeps the asked budget
    return list(cells.values()), slots


def _prepare(out: Path, args: CompareArgs) -> None:
    """Refuse a folder another run writes into, or others' files; then hold it (lock, unfinished marker)."""
    refuse_busy(out)
    if has_content(out) and not (out / _MARKER).is_file() and not args.overwrite_output_dir:
        raise OutputDirError(f"output_dir={str(out)!r} already exists, is not empty and holds no compare run. "
                             "Choose another --output_dir, or add --overwrite_output_dir to write into it.")
    out.mkdir(parents=True, exist_ok=True)
    claim_output_dir(out)


def _check_sources(model_args: ModelArgs, args: CompareArgs) -> None:
    """Refuse a model folder (the backbone, ``--nli_model``, ``--fewshot_model``) that holds an unfinished run."""
    for name in (model_args.model_name_or_path, args.nli_model, args.fewshot_model):
        if name and Path(str(name)).is_dir():
            check_finished(str(name), "the ladder")


def _context(model_args: ModelArgs, data_args: DataArgs, args: CompareArgs) -> CellContext:
    data = load_task_data(data_args, task="classification")
    if data.multi_label:
        raise DataError(f"{data.name} is multi-label; the compare ladder handles single-label classification only. "
                        "Fix: compare on a single-label dataset.")
    test = data.splits["test"] if "test" in data.splits else data.splits["validation"]
    prompt_test = seeded_subset(test, args.prompt_test_samples, data_args.split_seed)
    ctx = CellContext(data=data, test=test, prompt_test=prompt_test, model_args=model_args, data_args=data_args,
                      args=args, device=resolve_device(args.device))
    trained = [n for n in args.strategies if get_strategy(n).kind == "trained"]
    if args.check_forgetting and trained:
        ctx.forgetting = _probe(ctx, args)
    return ctx


def _probe(ctx: CellContext, args: CompareArgs) -> Any:
    margs = ctx.model_args
    path = resolve_model_path(margs.model_name_or_path, revision=margs.model_revision, cache_dir=margs.cache_dir,
                              token=margs.token)
    cache = Path(args.cell_cache_dir) if args.cell_cache_dir else Path(args.output_dir) / "cells"
    return ForgettingProbe(path, load_tokenizer(margs, path), general_texts(args.forgetting_text),
                           args.forgetting_samples, args.forgetting_max_length, ctx.device, cache)


def _cached(cells: list[Cell], cache: CellCache, report_only: bool) -> tuple[dict[str, dict[str, Any]], list[Cell]]:
    """The cells found in the cache (computed by the same code), and the rest."""
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in cells:
        found = cache.get(cell.key, cell.code)
        if found is None and report_only and (stale := cache.get(cell.key)) is not None:
            logger.warning("report_only: cell %s was computed by other code than today's; it is reported as it is.",
                           cell.label)
            found = stale
        if found is not None:
            records[cell.key] = found
        else:
            todo.append(cell)
    return records, todo


def _run_cells(ctx: CellContext, cells: list[Cell], cache: CellCache) -> tuple[dict[str, dict[str, Any]], int]:
    records, todo = _cached(cells, cache, ctx.args.report_only)
    logger.info("Compare: %d cells, %d cached, %d to run.", len(cells), len(records), len(todo))
    if ctx.args.report_only:
        logger.warning("report_only: %d of %d cells are not in the cache yet and are left out of the table.",
                       len(todo), len(cells))
        return records, 0
    bar = tqdm(total=len(cells), initial=len(records), desc="cells", unit="cell")

    def done(cell: Cell, record: dict[str, Any]) -> None:
        cache.put(cell.key, record, cell.code)
        records[cell.key] = cache.get(cell.key, cell.code) or record
        bar.set_postfix_str(f"{cell.label} done")
        bar.update(1)
        logger.info("Cell %d/%d done: %s (%.1f s)", bar.n, len(cells), cell.label, record["cell_seconds"])

    spec = ContextSpec(_context, ctx.model_args, ctx.data_args, ctx.args)
    try:
        run_cells(ctx, spec, todo, done)
    finally:
        bar.close()
    return records, len(todo)


def run_compare(model_args: ModelArgs, data_args: DataArgs, args: CompareArgs) -> CompareResult:
    """Run (or resume) the ladder and write its table (md, csv, json) and plots into ``args.output_dir``.

    Every cell is stored in the cache as soon as it finishes; a cell already there (same key: same strategy,
    settings, budget, seed, model and data) is read instead of recomputed, so a killed run resumes where it
    stopped and a run that adds a strategy computes only its cells.

    While it runs, the folder holds a lock and an unfinished-run marker (:mod:`tlnlp.config.run_folder`): a second
    ladder on it is refused, and a killed one reads as unfinished until a rerun completes it.

    Raises:
        OutputDirError: ``output_dir`` holds other files and ``overwrite_output_dir`` is not set, or another run
            writes into it.
        UnfinishedRunError: The model (or ``--nli_model``, ``--fewshot_model``) is the folder of an unfinished run.
    """
    out = Path(args.output_dir)
    _check_sources(model_args, args)
    _prepare(out, args)
    ctx = _context(model_args, data_args, args)
    cells, slots = plan_cells(ctx)
    (out / _MARKER).write_text(json.dumps({"cells": len(cells), "strategies": args.strategies,
                                           "budgets": args.budgets, "seeds": args.seeds}, indent=2))
    write_run_config(out, model_args, data_args, args, recipe="compare")
    env = environment_info(args.seeds[0], ctx.data.fingerprint, {
        "data_name": ctx.data.name, "data_version": ctx.data.version, "labels": ctx.data.labels, "seeds": args.seeds,
        "device": ctx.device, "test_rows": len(ctx.test), "prompt_test_rows": len(ctx.prompt_test)})
    write_json(out / "environment.json", env)
    cache = CellCache(args.cell_cache_dir or out / "cells")
    records, ran = _run_cells(ctx, cells, cache)
    slots = [slot for slot in slots if slot[3] in records]  # report_only leaves missing cells out
    if not slots:
        raise DataError("No finished cell to report: run without --report_only first.")
    rows = aggregate([(s, kind, b, records[key]) for s, kind, b, key in slots])
    per_class_all = len(ctx.data.splits["train"]) / ctx.data.num_labels
    for row in rows:  # labelled examples available per class (the learning curve's x)
        row["labels_per_class"] = per_class_all if row["budget"] == ALL else float(row["budget"])
    warnings = flag_negative_transfer(rows, args.metric, args.negative_transfer_margin)
    extra = {"data": ctx.data.name, "model": model_args.model_name_or_path, "metric": args.metric,
             "warnings": warnings, "strategies": {n: get_strategy(n).description for n in args.strategies}}
    extra.update(selection_report(ctx, rows, cache.folder))  # in-budget scores, the pick per budget, its regret
    paths = write_tables(rows, out, extra)
    title = f"{ctx.data.name} | {model_args.model_name_or_path}"
    paths["learning_curve"] = plot_learning_curves(rows, out / "learning_curve.png", args.metric, title)
    paths["cost_accuracy"] = plot_cost_accuracy(rows, out / "cost_vs_accuracy.png", args.metric, title)
    paths["card"] = write_card(out, ctx, rows, extra)
    close_output_dir(out)  # every file of the ladder is written
    return CompareResult(rows=rows, records=[records[c.key] for c in cells if c.key in records], warnings=warnings,
                         paths=paths, markdown=format_markdown(rows), cells_run=ran, slots=slots,
                         recommendation=extra["recommendation"])
