"""The card of an ensemble run: the ensemble's results, and a table of its members' own results beside them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tlnlp.config import rerun_command, resolved_config
from tlnlp.hub import CardSpec, build_model_card
from tlnlp.runs import reproduce_command

if TYPE_CHECKING:
    from tlnlp.ensemble.outputs import EnsembleResult

__all__ = ["ensemble_card", "members_table"]

#: The metrics the members table shows (those the runs recorded): single-label, then multi-label runs.
_TABLE_METRICS = {False: ("accuracy", "f1_macro"), True: ("f1_micro", "f1_macro", "accuracy")}
#: The settings the card lists (those the run has).
_CARD_SETTINGS = ("method", "ensemble_seeds", "average_checkpoints", "seed", "learning_rate", "num_train_epochs",
                  "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "weight_decay",
                  "warmup_steps", "lr_scheduler_type", "max_seq_length", "long_text")


def members_table(members: dict[int, dict[str, float]], ensemble: dict[str, Any], names: dict[int, str],
                  multi_label: bool = False) -> str:
    """Markdown: one row per member, the members' mean and the ensemble, for the main eval and test metrics.

    Args:
        members: Each member's metrics by seed (from its ``all_results.json``).
        ensemble: The ensemble's metrics.
        names: Each member's folder by seed.
        multi_label: Whether the run is multi-label (micro-F1 first).
    """
    wanted = [f"{split}_{name}" for split in ("eval", "test") for name in _TABLE_METRICS[multi_label]]
    shown = [key for key in wanted if key in ensemble or any(key in m for m in members.values())]
    header = ["member", "seed", *shown]
    rows = [[f"`{names[seed]}`", str(seed), *(_number(metrics.get(key)) for key in shown)]
            for seed, metrics in members.items()]
    means = [_number(float(np.mean(values))) if (values := [m[k] for m in members.values() if k in m]) else ""
             for k in shown]
    rows.append(["mean of the members", "", *means])
    rows.append(["**ensemble (soft vote)**", "", *(_number(ensemble.get(key)) for key in shown)])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def ensemble_card(result: EnsembleResult, metrics: dict[str, Any], members: dict[int, dict[str, float]]) -> str:
    """The README.md of an ensemble's folder.

    Args:
        result: The ensemble run.
        metrics: The ensemble's metrics (``eval_*``, ``test_*``; the members' are left out of its Results).
        members: Each member's metrics by seed.
    """
    data, size = result.data, len(result.members)
    names = {member.seed: member.name for member in result.members}
    seeds = ", ".join(str(seed) for seed in names)
    how = ("the mean of their per-label sigmoid probabilities, thresholded at "
           f"{result.threshold:g}" if data.multi_label else "the mean of their softmax probabilities")
    section = (f"{size} runs of `--method {result.method}` that differ only in their seed ({seeds}), each an "
               f"ordinary run in its folder under `members/`. The ensemble predicts with {how} (soft voting, equal "
               f"weights; `ensemble.json`).\n\n" + members_table(members, metrics, names, data.multi_label))
    usage = ("```python\nimport tlnlp\n\npipe = tlnlp.load_pipeline(\"<this folder>\")  # every member, voting\n"
             "pipe(\"A short text to classify.\", top_k=None)\n```\n\nor `tlnlp predict <this folder> \"A short "
             "text\"`. The folder holds no weights of its own: keep `members/` with it.")
    resolved = resolved_config(*result.config_objects)
    config = {key: resolved[key] for key in _CARD_SETTINGS if resolved.get(key) is not None}
    ensemble_metrics = {k: v for k, v in metrics.items() if k.startswith(("eval_", "test_"))}
    card = build_model_card(CardSpec(
        model_name=result.output_dir.name, base_model=result.base_model,
        task="multi-label classification" if data.multi_label else "text-classification", method=result.method,
        method_description=f"a soft-voting ensemble of {size} `{result.method}` runs (seeds {seeds}).",
        dataset_name=data.name, metrics=ensemble_metrics, labels=list(data.labels),
        dataset_description=getattr(data, "description", None), dataset_license=getattr(data, "license", None),
        hub_dataset_id=getattr(data, "hub_dataset_id", None), hyperparameters=config, tags=["ensemble"],
        extra_sections={"Ensemble": section, "Using this ensemble": usage},
        command=reproduce_command() + "\n# or, from this folder's settings:\n" + rerun_command(result.recipe),
    ))
    return str(card)
