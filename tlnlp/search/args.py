"""``HpSearchArgs``: the flags of a hyperparameter search (``--hp_search``, ``--hp_trials``, ``--hp_space``...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BACKENDS", "HpSearchArgs"]

#: ``--hp_search`` values: no search, optuna (embedded, resumable), Ray Tune (several machines).
BACKENDS = ("none", "optuna", "ray")


@dataclass
class HpSearchArgs:
    """Hyperparameter search over TrainingArguments and method options, scored on the validation split.

    The objective is ``eval_<metric_for_best_model>`` (the recipe's main metric when that flag is unset); the test
    split is never scored during the search. The best values then train the run's final model.
    """

    hp_search: str = field(
        default="none",
        metadata={"help": "Search hyperparameters before training: none, optuna (study in "
                          "<output_dir>/hp_search/study.db; rerunning the command after an interruption continues "
                          "it) or ray (Ray Tune; --ray_address for a cluster). The best values then train the "
                          "final model in output_dir."})
    hp_trials: int = field(
        default=8, metadata={"help": "Trials in the search; with optuna, trials already finished in the study "
                                     "count towards it."})
    hp_space: str | None = field(
        default=None,
        metadata={"help": "YAML file of the search space: `name: {type: float|int|categorical, low, high, log, "
                          "step, choices}` for any TrainingArguments flag or method option. Default: a built-in "
                          "space for the method (learning rate, epochs, weight decay, warm-up, and e.g. lora_r)."})
    ray_address: str | None = field(
        default=None, metadata={"help": "--hp_search ray: address of a running Ray cluster (default: start Ray "
                                        "on this machine)."})

    def __post_init__(self) -> None:
        if self.hp_search not in BACKENDS:
            raise ValueError(f"hp_search={self.hp_search!r} is not valid; choose one of: {', '.join(BACKENDS)}.")
        if isinstance(self.hp_trials, bool) or not isinstance(self.hp_trials, int) or self.hp_trials < 1:
            raise ValueError(f"hp_trials={self.hp_trials!r} must be a positive whole number of trials.")
        if self.hp_space is not None and not Path(self.hp_space).is_file():
            raise ValueError(f"hp_space={self.hp_space!r}: file not found. Give the path of a YAML search space "
                             "(relative paths start from the current working directory).")
        if self.ray_address is not None and self.hp_search != "ray":
            raise ValueError(f"ray_address={self.ray_address!r} is for --hp_search ray (hp_search="
                             f"{self.hp_search!r}); drop it or add --hp_search ray.")

    @property
    def enabled(self) -> bool:
        """Whether a search runs."""
        return self.hp_search != "none"
