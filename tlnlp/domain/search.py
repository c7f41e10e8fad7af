"""A hyperparameter search of DANN, scored on the target's labelled validation split, through the recipe's hooks.

Without target labels a search has nothing sound to score: the source's validation split rewards dropping the
adaptation (``domain_loss_weight`` near 0). With a labelled target validation split, each trial trains DANN as the
run does (source rows paired with unlabelled target texts) and is scored on that split (``eval_target_accuracy``,
or the ``target_*`` metric ``--metric_for_best_model`` names); the target's test split is scored by the final model
only. This layer does not import ``tlnlp.search``: the recipe passes a :class:`DomainSearch` holding its hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tlnlp.domain.target import TargetData

__all__ = ["SEARCHABLE", "SEARCH_METRIC", "SEARCH_RANGES", "DomainSearch", "search_refusal"]

#: DomainArgs options a search may vary (the others pick the target rows every trial shares).
SEARCHABLE = ("domain_loss_weight", "domain_lambda_gamma", "domain_hidden_size", "domain_dropout",
              "domain_learning_rate")
#: What DANN adds to a method's built-in search space.
SEARCH_RANGES: dict[str, dict[str, Any]] = {"domain_loss_weight": {"type": "float", "low": 0.0, "high": 1.0}}
#: The search's objective when ``--metric_for_best_model`` is unset: accuracy on the target's validation split.
SEARCH_METRIC = "target_accuracy"
_FIX_TARGET = ("give a --target_dataset with a labelled validation split whose labels the source has (e.g. "
               "bundled:movie_sentiment), or drop --hp_search")


@dataclass
class DomainSearch:
    """The recipe's hyperparameter search, as hooks (``tlnlp.search`` lives above this layer).

    Attributes:
        run: ``tlnlp.search.search_hook(...)``: called with the search's parts, returns its outcome (``results``,
            ``sections``); it sets the best values on the run's arguments (``DomainArgs`` included).
        refuse: ``refuse(reason, fix)`` raises the recipe's one-line refusal of ``--hp_search``.
        prepare_output_dir: Guards the output folder as a search needs (an interrupted search there continues);
            returns the checkpoint to resume from, or None.
    """

    run: Callable[[Mapping[str, Any]], Any]
    refuse: Callable[[str, str], None]
    prepare_output_dir: Callable[[Any], str | None]


def _target_metric(name: str | None) -> bool:
    return name is None or name.removeprefix("eval_").startswith("target_")


def search_refusal(train_args: Any, target: TargetData | None) -> tuple[str, str] | None:
    """``(reason, fix)`` when a search of this run would not be sound, else None.

    That is: ``--metric_for_best_model`` names a metric that is not the target's, or (``target`` loaded) the target
    has no labelled validation split to score trials on.
    """
    metric = getattr(train_args, "metric_for_best_model", None)
    if not _target_metric(metric):
        return (f"metric_for_best_model={metric!r} scores the source's validation split, which rewards dropping "
                "the adaptation (domain_loss_weight near 0)",
                f"name a metric of the target's validation split, e.g. --metric_for_best_model {SEARCH_METRIC} "
                "(or target_f1_macro), or leave it unset")
    if target is not None and target.validation is None:
        note = " ".join(target.validation_note.split())
        return (f"the target {target.name} has no labelled validation split to score trials on ({note}), and the "
                "source's validation split rewards dropping the adaptation", _FIX_TARGET)
    return None
