"""``FewShotArgs``: the few-shot recipe's options (each is a flag and a YAML key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tlnlp.fewshot.calibration import DEFAULT_CONTENT_FREE, NORMALIZATIONS
from tlnlp.fewshot.options import FewShotOptions

__all__ = ["FewShotArgs"]


@dataclass
class FewShotArgs:
    """Which prompt, how many demonstrations, over how many samples and orders, and how to score."""

    prompt_spec: str = field(
        default="auto", metadata={"help": "Built-in prompt spec name (sentiment, trec6, sms_spam, bbc_news, "
                                          "trec50), a YAML file, or auto (the built-in spec for the dataset)."})
    shots: int = field(default=4, metadata={"help": "Demonstrations per class (balanced); 0 for zero-shot."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4],
                             metadata={"help": "One demonstration sample per seed (these seeds, not --seed, pick the "
                                               "demonstrations)."})
    orders: int = field(default=1, metadata={"help": "Orders (permutations) of each seed's demonstrations."})
    calibrate: bool = field(
        default=True, metadata={"help": "Predict with contextually calibrated probabilities (raw ones are always "
                                        "reported too)."})
    content_free: list[str] = field(
        default_factory=lambda: list(DEFAULT_CONTENT_FREE),
        metadata={"help": "Content-free inputs for calibration (Zhao et al. 2021)."})
    length_normalization: str = field(
        default="sum", metadata={"help": "Primary scoring of label words: sum (total log-likelihood) or mean "
                                         "(per token). Both are reported."})
    split: str = field(default="test", metadata={"help": "Split to evaluate: test or validation."})
    shared_prefix: bool = field(
        default=True, metadata={"help": "Encode the demonstrations once and reuse their key/value cache (False: "
                                        "score every full sequence; same numbers, slower)."})

    def __post_init__(self) -> None:
        if self.shots < 0:
            raise ValueError(f"shots={self.shots!r} must be 0 or more demonstrations per class.")
        if not self.seeds:
            raise ValueError("seeds is empty; give at least one seed, e.g. --seeds 0 1 2.")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} repeats a seed; give distinct seeds.")
        if self.orders < 1:
            raise ValueError(f"orders={self.orders!r} must be at least 1.")
        if self.length_normalization not in NORMALIZATIONS:
            raise ValueError(f"length_normalization={self.length_normalization!r} is not valid; choose one of: "
                             f"{', '.join(NORMALIZATIONS)}.")
        if self.calibrate and not self.content_free:
            raise ValueError("calibrate=True needs content-free inputs; give --content_free 'N/A' or --calibrate "
                             "false.")

    def options(self, batch_size: int, show_progress: bool = True) -> FewShotOptions:
        """These flags as the :class:`FewShotOptions` of ``evaluate_few_shot`` (``--split`` is the caller's)."""
        return FewShotOptions(shots=self.shots, seeds=self.seeds, orders=self.orders, calibrate=self.calibrate,
                              content_free=self.content_free, normalization=self.length_normalization,
                              batch_size=batch_size, shared_prefix=self.shared_prefix, show_progress=show_progress)
