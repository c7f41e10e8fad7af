"""``EnsembleArgs``: ``--ensemble_seeds`` (soft-voting ensembles) and ``--average_checkpoints`` (weight averaging)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tlnlp.errors import UserError

__all__ = ["EnsembleArgs", "EnsembleError"]


class EnsembleError(UserError, ValueError):
    """An ensemble or checkpoint-averaging setting that cannot work as asked; the message names the fix."""


@dataclass
class EnsembleArgs:
    """Several seeds voting together (a soft-voting ensemble), or one run's last checkpoints averaged."""

    ensemble_seeds: int = field(
        default=1, metadata={"help": "Train N runs with seeds seed, seed+1, ... (each an ordinary run in "
                                     "<output_dir>/members/seed-<s>/) and predict with the mean of their label "
                                     "probabilities (soft voting); the folder loads with load_pipeline and tlnlp "
                                     "predict, and --push_to_hub pushes it with its members. A rerun after an "
                                     "interruption reuses the finished members. 1: off."})
    average_checkpoints: int = field(
        default=0, metadata={"help": "Trainer methods: after training, replace the weights by the mean of the last "
                                     "K checkpoint-* folders' weights (an adapter run averages its adapter) before "
                                     "the final evaluation and save. Needs save_strategy steps or epoch and at "
                                     "least K checkpoints; save_total_limit is raised to K unless given. 0: off."})

    def __post_init__(self) -> None:
        if not isinstance(self.ensemble_seeds, int) or self.ensemble_seeds < 1:
            raise ValueError(f"ensemble_seeds={self.ensemble_seeds!r} must be 1 (one run, no ensemble) or more, "
                             "e.g. --ensemble_seeds 5.")
        if not isinstance(self.average_checkpoints, int) or self.average_checkpoints < 0:
            raise ValueError(f"average_checkpoints={self.average_checkpoints!r} must be 0 (off) or a number of "
                             "checkpoints, e.g. --average_checkpoints 3.")
        if self.average_checkpoints == 1:
            raise ValueError("average_checkpoints=1 averages a single checkpoint: give 2 or more (e.g. "
                             "--average_checkpoints 3), or 0 to turn it off.")

    @property
    def is_ensemble(self) -> bool:
        """Whether this run trains several members."""
        return self.ensemble_seeds > 1

    def for_member(self) -> EnsembleArgs:
        """The settings of one member: no ensemble of its own, the same checkpoint averaging."""
        return EnsembleArgs(ensemble_seeds=1, average_checkpoints=self.average_checkpoints)
