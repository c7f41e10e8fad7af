"""``FewShotOptions``: which prompts :func:`~tlnlp.fewshot.evaluate.evaluate_few_shot` builds and how it scores them.

The core inputs (model, tokenizer, prompt spec, training and evaluation rows) stay arguments of
``evaluate_few_shot``; everything else is one frozen value, so a caller names only what differs from the defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tlnlp.fewshot.calibration import DEFAULT_CONTENT_FREE

__all__ = ["FewShotOptions"]


@dataclass(frozen=True)
class FewShotOptions:
    """Demonstration plan and scoring knobs of a few-shot evaluation.

    Attributes:
        shots: Demonstrations per class (balanced); 0 for zero-shot prompting (one run: seeds and orders would
            all give the same prompt).
        seeds: One demonstration sample per seed (stored as a tuple).
        orders: Permutations of each sample.
        calibrate: Use the calibrated probabilities as the primary prediction (raw ones are always reported).
        content_free: Content-free inputs for calibration (Zhao et al. 2021), written into every template field
            (stored as a tuple).
        normalization: Primary scoring of multi-token words: ``sum`` of token log-likelihoods, or ``mean``
            (length-normalised). Both are always reported.
        batch_size: Sequences per forward pass.
        shared_prefix: Reuse the prefix's key/value cache (False: naive full sequences; same numbers, slower).
        show_progress: Show a progress bar per run.

    Values are checked by ``evaluate_few_shot`` (against the data too), not here.
    """

    shots: int
    seeds: Sequence[int] = (0,)
    orders: int = 1
    calibrate: bool = True
    content_free: Sequence[str] = DEFAULT_CONTENT_FREE
    normalization: str = "sum"
    batch_size: int = 16
    shared_prefix: bool = True
    show_progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.seeds))  # frozen means frozen: no list shared with the caller
        object.__setattr__(self, "content_free", tuple(self.content_free))
