"""Ladder strategies ``ensemble:<strategy>``: ``--ensemble_size`` cells of a strategy voting on the test split.

A cell of ``ensemble:full`` at budget k and seed s runs ``--ensemble_size`` cells of ``full``, all on the k-shot
rows of seed s (an ensemble sees no more labels than one model of its budget); member i trains with seed
s + 1000 i, so member 0 is the plain ``full`` cell of seed s. Each member is the strategy's own cell, in-budget
selection included; its scores of the test rows (the ones it hands to :func:`~tlnlp.compare.strategies.test_metrics`)
go through a softmax, and the ensemble predicts with the mean of the members' probabilities (soft voting). Its costs
are the ensemble's: the members' training and inference times, and their parameters, summed. The record keeps each
member's metrics (``members``) and their mean (``member_accuracy_mean``), so an ensemble can be set against its
members. Any strategy that trains on the k-shot rows with a seed can be a member: the Trainer's methods,
``from_scratch``, the methods on sentence embeddings (``setfit``, ``feature_extraction``...), ``staged:<source>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tlnlp.compare.cells import Cell
from tlnlp.compare.strategies import TEST_SCORES, TRAINED_KINDS, CellContext, Strategy, get_strategy, test_metrics

__all__ = ["FAMILY", "SEED_STRIDE", "ensemble_probabilities", "ensemble_strategy", "member_seeds",
           "run_scoring_test_rows", "soft_vote_record", "softmax"]

#: The strategy family: ``ensemble:<strategy>``.
FAMILY = "ensemble"
#: Member i of a cell with seed s trains with seed s + SEED_STRIDE * i.
SEED_STRIDE = 1000
#: Bumped when a change alters the results of these cells, so cached cells are recomputed.
_VERSION = 1
#: Kinds of strategy that can be members: they train on the k-shot rows, with a seed.
_MEMBER_KINDS = ("trained", "reference", "fitted")


@dataclass
class _MemberContext(CellContext):
    """A cell context whose k-shot rows are fixed: every member of an ensemble trains on its cell's rows."""

    rows: list[int] = field(default_factory=list)

    def budget_rows(self, budget: int | str, seed: int) -> list[int]:
        """The ensemble cell's rows, whatever the member's seed."""
        return list(self.rows)


def member_seeds(seed: int, size: int) -> list[int]:
    """The seeds of an ensemble cell's members: ``seed``, ``seed + 1000``, ..."""
    return [seed + SEED_STRIDE * index for index in range(size)]


def ensemble_probabilities(probabilities: list[np.ndarray]) -> np.ndarray:
    """The soft vote: the mean of the members' ``rows x classes`` probabilities."""
    return np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in probabilities]), axis=0)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Probabilities from a cell's scores (logits, or log-probabilities: their softmax is themselves)."""
    shifted = np.asarray(scores, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    return np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)


def _member_context(ctx: CellContext, cell: Cell, index: int) -> _MemberContext:
    """The context of member ``index``: the cell's rows; no forgetting check; member 0 shares the run's caches.

    The other members get caches of their own: a cache keyed by (budget, seed) would otherwise hold their rows
    under a seed whose own rows differ.
    """
    values = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(CellContext) if f.init}
    values.update(forgetting=None, loaded=ctx.loaded if index == 0 else {})
    return _MemberContext(**values, rows=ctx.budget_rows(cell.budget, cell.seed))


def _member_cell(cell: Cell, member: str, settings: dict[str, Any], seed: int) -> Cell:
    """The member's own cell: the member strategy's configuration, at the member's seed."""
    config = {key: cell.config[key] for key in ("budget", "model", "data", "test_rows") if key in cell.config}
    config.update({"strategy": member, "seed": seed, **settings})
    return Cell(member, cell.budget, seed, config)


def run_scoring_test_rows(ctx: CellContext, run: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any],
                                                                                      np.ndarray | None]:
    """``run()`` a member's cell; its record and the last scores it handed :func:`test_metrics` for ``ctx``'s test rows.

    The scores are None when the cell scored no such rows (another subset, or not through ``test_metrics``).
    """
    gold = [int(label) for label in ctx.test["label"]]
    seen: list[np.ndarray] = []

    def keep(labels: Any, scores: np.ndarray) -> None:
        if len(scores) == len(gold) and [int(label) for label in np.asarray(labels)] == gold:
            seen.append(np.asarray(scores))

    token = TEST_SCORES.set(keep)
    try:
        record = run()
    finally:
        TEST_SCORES.reset(token)
    return record, (seen[-1] if seen else None)


def _run_member(ctx: CellContext, strategy: Strategy, member_ctx: CellContext,
                cell: Cell) -> tuple[dict[str, Any], np.ndarray]:
    """Run one member's cell; its record and its probabilities on the test rows (the last scores of those rows)."""
    record, scores = run_scoring_test_rows(ctx, lambda: strategy.run(member_ctx, cell))
    if scores is None:
        raise ValueError(f"ensemble:{strategy.name}: its cells score the test rows without test_metrics, so their "
                         "probabilities cannot be averaged. Choose another member strategy.")
    return record, softmax(scores)


def _member_summary(seed: int, record: dict[str, Any]) -> dict[str, Any]:
    kept = {key: record[key] for key in ("learning_rate", "epochs", "train_time_s", "selection") if key in record}
    return {"seed": seed, "metrics": record["metrics"], **kept}


def soft_vote_record(ctx: CellContext, records: list[dict[str, Any]],
                     probabilities: list[np.ndarray]) -> dict[str, Any]:
    """The record of a soft vote: metrics of the mean probabilities; times and parameters summed over the members."""
    mean = ensemble_probabilities(probabilities)
    total = {key: sum(r.get(key, 0) or 0 for r in records)
             for key in ("train_time_s", "inference_s_per_example", "trainable_parameters", "total_parameters")}
    return {"metrics": test_metrics(ctx.test["label"], np.log(np.clip(mean, 1e-12, None)), ctx.data.num_labels),
            "n_test": len(ctx.test), **total,
            "peak_memory_mb": max(float(r.get("peak_memory_mb", 0.0) or 0.0) for r in records),
            "memory_kind": records[0].get("memory_kind")}


def _ensemble_cell(ctx: CellContext, cell: Cell, member: str) -> dict[str, Any]:
    strategy = get_strategy(member)
    settings = strategy.settings(ctx, cell.budget)
    seeds = member_seeds(cell.seed, int(ctx.args.ensemble_size))
    records, probabilities = [], []
    for index, seed in enumerate(seeds):
        record, found = _run_member(ctx, strategy, _member_context(ctx, cell, index),
                                    _member_cell(cell, member, settings, seed))
        records.append(record)
        probabilities.append(found)
    return {
        **soft_vote_record(ctx, records, probabilities), "n_train": records[0].get("n_train", 0),
        "ensemble_size": len(records), "member_seeds": seeds,
        "members": [_member_summary(seed, r) for seed, r in zip(seeds, records, strict=True)],
        **{f"member_{name}_mean": float(np.mean([r["metrics"][name] for r in records]))
           for name in ("accuracy", "f1_macro")},
    }


def ensemble_strategy(name: str) -> Strategy | None:
    """The strategy ``ensemble:<strategy>``, or None when ``name`` is not one.

    Raises:
        tlnlp.registry.RegistryError: ``<strategy>`` is no strategy (the message suggests close names).
        ValueError: ``<strategy>`` cannot be a member: it uses no labels, no seed, no k-shot rows of its own
            (zero-shot, few-shot prompting, ``multitask:``, ``dann:``), or is an ensemble itself.
    """
    family, _, member = name.partition(":")
    if family != FAMILY or not member:
        return None
    found = get_strategy(member)
    if member.startswith(f"{FAMILY}:") or found.kind not in _MEMBER_KINDS or not (found.uses_labels and found.seeded):
        raise ValueError(f"strategies: {name!r}: an ensemble's members must be a strategy that trains on the k-shot "
                         "rows with a seed (full, lora, from_scratch, setfit, feature_extraction, staged:<source>...);"
                         f" {member!r} is a {found.kind} strategy.")

    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        size = int(ctx.args.ensemble_size)
        return {"family": FAMILY, "member": member, "member_settings": found.settings(ctx, budget), "size": size,
                "seed_stride": SEED_STRIDE, "version": _VERSION}

    return Strategy(name=name, kind="trained" if found.kind in TRAINED_KINDS else found.kind, settings=settings,
                    description=f"soft-voting ensemble of --ensemble_size {member} cells (seeds s, s+1000, ...) on "
                                "the same k-shot rows: the mean of their probabilities",
                    run=lambda ctx, cell: _ensemble_cell(ctx, cell, member))
