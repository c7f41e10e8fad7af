"""Ladder strategies ``vote:<a>,<b>[,...]``: cells of different strategies voting on the test split.

Where ``ensemble:<strategy>`` averages one strategy over seeds, a vote averages different routes: e.g.
``vote:source_only:nyt_sentiment,setfit_zero_shot_head`` sets a model trained on another labelled corpus (no target
label) beside one trained on the budget's own rows. A cell of the vote at budget k and seed s runs each member's own
cell: at budget k and seed s for a member that uses labels (on the same k-shot rows), at budget 0 for one that does
not (zero-shot, ``source_only:``, ``dann:``), with seed s where the member is seeded. Every member votes with equal
weight: the mean of the members' probabilities (each member's scores of the test rows, the ones it hands to
:func:`~tlnlp.compare.strategies.test_metrics`; logits and log-probabilities go through a softmax, probabilities
are kept). There is no knob to choose, so a vote has no in-budget score and is no candidate of the recommendation.
Costs are summed over the members; the record keeps each member's metrics (``members``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tlnlp.compare.cells import Cell
from tlnlp.compare.ensemble_strategies import run_scoring_test_rows, soft_vote_record, softmax
from tlnlp.compare.strategies import TRAINED_KINDS, CellContext, Strategy, get_strategy

__all__ = ["FAMILY", "SEPARATOR", "as_probabilities", "vote_members", "vote_strategy"]

#: The strategy family: ``vote:<a>,<b>``.
FAMILY = "vote"
#: Separates the members in the name (``+`` already joins pooled sources, ``staged:a+b``).
SEPARATOR = ","
#: Bumped when a change alters the results of these cells, so cached cells are recomputed.
_VERSION = 1
#: Kinds whose cells score the test rows through test_metrics with probabilities a vote can average.
_MEMBER_KINDS = ("trained", "reference", "fitted", "zero_shot")


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """A member's ``rows x classes`` scores as probabilities: kept when they already are, else their softmax."""
    values = np.asarray(scores, dtype=np.float64)
    if values.min() >= 0 and np.allclose(values.sum(axis=-1), 1.0, atol=1e-4):
        return values
    return softmax(values)


def vote_members(name: str) -> list[str] | None:
    """The member names of ``vote:<a>,<b>``, or None when ``name`` is not a vote.

    Raises:
        ValueError: Fewer than two members, one named twice, an empty member, or a member that cannot vote.
    """
    family, _, rest = name.partition(":")
    if family != FAMILY:
        return None
    members = [part.strip() for part in rest.split(SEPARATOR)]
    if len(members) < 2 or not all(members) or len(set(members)) != len(members):
        raise ValueError(f"strategies: {name!r}: a vote names two or more different strategies after 'vote:', "
                         f"separated by '{SEPARATOR}' (e.g. vote:source_only:nyt_sentiment,setfit_zero_shot_head).")
    for member in members:
        found = get_strategy(member)
        if found.kind not in _MEMBER_KINDS or member.partition(":")[0] in (FAMILY, "ensemble"):
            raise ValueError(f"strategies: {name!r}: {member!r} cannot vote (a {found.kind} strategy, or a vote "
                             "or ensemble itself); members are trained, fitted or zero-shot strategies.")
    if not any(get_strategy(member).uses_labels for member in members):
        raise ValueError(f"strategies: {name!r}: no member uses the budget's labels; a vote of zero-label "
                         "strategies needs none of the k-shot rows. Add a member that trains on them.")
    return members


def _member_cell(ctx: CellContext, cell: Cell, member: str) -> Cell:
    """The member's own cell, as the ladder would key it: budget 0 without labels, no seed where unseeded."""
    strategy = get_strategy(member)
    budget = cell.budget if strategy.uses_labels else 0
    seed = cell.seed if strategy.seeded else None
    config = {key: cell.config[key] for key in ("model", "data", "test_rows") if key in cell.config}
    config.update({"strategy": member, "budget": budget, "seed": seed, **strategy.settings(ctx, budget)})
    return Cell(member, budget, seed if seed is not None else 0, config)


def _run_member(ctx: CellContext, member: str, cell: Cell) -> tuple[dict[str, Any], np.ndarray]:
    """Run one member's cell; its record and its probabilities of the test rows (the last scores of those rows)."""
    record, scores = run_scoring_test_rows(ctx, lambda: get_strategy(member).run(ctx, _member_cell(ctx, cell, member)))
    if scores is None:
        raise ValueError(f"vote: {member!r} scores a subset of the test rows (or none), so its probabilities "
                         "cannot be averaged with the others'. Choose another member.")
    return record, as_probabilities(scores)


def _vote_cell(ctx: CellContext, cell: Cell, members: list[str]) -> dict[str, Any]:
    ctx = dataclasses.replace(ctx, forgetting=None)  # the members' own LM check is not the vote's
    records, probabilities = [], []
    for member in members:
        record, found = _run_member(ctx, member, cell)
        records.append(record)
        probabilities.append(found)
    return {
        **soft_vote_record(ctx, records, probabilities), "n_train": max(r.get("n_train", 0) or 0 for r in records),
        "vote_size": len(records),
        "members": [{"strategy": member, "metrics": r["metrics"],
                     **{k: r[k] for k in ("train_time_s", "selection", "source_test_accuracy") if k in r}}
                    for member, r in zip(members, records, strict=True)],
    }


def vote_strategy(name: str) -> Strategy | None:
    """The strategy ``vote:<a>,<b>[,...]``, or None when ``name`` is not one (errors: :func:`vote_members`)."""
    members = vote_members(name)
    if members is None:
        return None
    names = tuple(members)  # a tuple of names in the closures: the cell's code hash covers each member's code

    def settings(ctx: CellContext, budget: int | str) -> dict[str, Any]:
        found = {member: get_strategy(member) for member in names}
        return {"family": FAMILY, "version": _VERSION,
                "members": {member: strategy.settings(ctx, budget if strategy.uses_labels else 0)
                            for member, strategy in found.items()}}

    trained = any(get_strategy(member).kind in TRAINED_KINDS for member in members)
    return Strategy(name=name, kind="trained" if trained else "fitted", settings=settings,
                    description="soft vote, equal weights, of " + " and ".join(members) + " (each its own cell, "
                                "same seed; members with labels on the same k-shot rows)",
                    run=lambda ctx, cell: _vote_cell(ctx, cell, list(names)))
