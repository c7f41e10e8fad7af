"""``DomainArgs``: the unlabelled target, the adversary (domain classifier, λ schedule) and the A-distance rows."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DOMAIN_LR_MULTIPLIER", "MIN_A_DISTANCE_ROWS", "DomainArgs"]

#: The domain classifier's learning rate, as a multiple of ``--learning_rate``, unless ``--domain_learning_rate``.
DOMAIN_LR_MULTIPLIER = 10
#: Fewest rows per domain the proxy A-distance is measured on (``--a_distance_samples`` 0 skips it).
MIN_A_DISTANCE_ROWS = 10


def _positive(name: str, value: float | int | None) -> None:
    if value is not None and (not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(f"{name}={value!r} must be a positive number.")


@dataclass
class DomainArgs:
    """Unsupervised domain adaptation (DANN): where the unlabelled target texts come from, and the adversary.

    The labelled source is the recipe's usual data flags (``--dataset_name`` or ``--train_file``...).
    """

    target_dataset: str | None = field(
        default=None, metadata={"help": "Unlabelled target: a bundled corpus (bundled:movie_sentiment) or a Hub "
                                        "dataset. Its training texts are the unlabelled target rows; its labels, "
                                        "if it has any, never reach training: they score its test split, and its "
                                        "validation split as eval_target_* (the objective of --hp_search)."})
    target_dataset_config_name: str | None = field(
        default=None, metadata={"help": "Hub configuration of --target_dataset."})
    target_text_file: str | None = field(
        default=None, metadata={"help": "Unlabelled target from a file instead: .txt (one text per line) or "
                                        "csv/tsv/json/jsonl/parquet (the --target_text_column column)."})
    target_text_column: str | None = field(
        default=None, metadata={"help": "Column of the target holding its text (default: 'text', else "
                                        "'sentence')."})
    target_max_samples: int | None = field(
        default=None, metadata={"help": "Keep N seeded unlabelled target texts for training (default: all)."})
    target_max_predict_samples: int | None = field(
        default=None, metadata={"help": "Labelled target: score N rows of its test split (default: all)."})
    domain_loss_weight: float = field(
        default=1.0, metadata={"help": "λ_max: the largest weight of the reversed domain-loss gradient that reaches "
                                       "the encoder. λ ramps from 0 to λ_max as λ_max·(2/(1+exp(-γ·p))-1), p = "
                                       "training progress. 0 gives the source-only baseline (same rows and steps; "
                                       "the domain classifier still trains and is logged, the encoder ignores it)."})
    domain_lambda_gamma: float = field(
        default=10.0, metadata={"help": "γ of the λ ramp (Ganin et al. 2016 use 10)."})
    domain_hidden_size: int = field(
        default=256, metadata={"help": "Hidden units of the domain classifier (Linear-ReLU-Dropout-Linear)."})
    domain_dropout: float = field(default=0.1, metadata={"help": "Dropout inside the domain classifier."})
    domain_learning_rate: float | None = field(
        default=None, metadata={"help": "Learning rate of the domain classifier (default: "
                                        f"{DOMAIN_LR_MULTIPLIER} x --learning_rate, as Ganin et al.'s implementation "
                                        "trains its new layers; at the encoder's rate the encoder outruns it)."})
    a_distance_samples: int = field(
        default=500, metadata={"help": "Rows per domain for the proxy A-distance before and after training "
                                       "(source: its test split; target: its held-out texts, never trained on). "
                                       f"0 skips it; else at least {MIN_A_DISTANCE_ROWS}."})

    def __post_init__(self) -> None:
        if (self.target_dataset is None) == (self.target_text_file is None):
            given = "both are set" if self.target_dataset is not None else "neither is set"
            raise ValueError(f"Give the unlabelled target with exactly one of --target_dataset (e.g. "
                             f"bundled:movie_sentiment) or --target_text_file (one text per line); {given}.")
        for name in ("target_max_samples", "target_max_predict_samples", "domain_lambda_gamma",
                     "domain_hidden_size", "domain_learning_rate"):
            _positive(name, getattr(self, name))
        if not isinstance(self.domain_loss_weight, (int, float)) or self.domain_loss_weight < 0:
            raise ValueError(f"domain_loss_weight={self.domain_loss_weight!r} must be >= 0 (0: the source-only "
                             "baseline; 1: Ganin et al.'s schedule).")
        if not 0 <= self.domain_dropout < 1:
            raise ValueError(f"domain_dropout={self.domain_dropout!r} must be in [0, 1).")
        if self.a_distance_samples != 0 and self.a_distance_samples < MIN_A_DISTANCE_ROWS:
            raise ValueError(f"a_distance_samples={self.a_distance_samples!r}: give 0 (skip the A-distance) or at "
                             f"least {MIN_A_DISTANCE_ROWS} rows per domain.")

    @property
    def target_name(self) -> str:
        """The target as the user named it (the dataset, or the file's name)."""
        return str(self.target_dataset if self.target_dataset is not None else self.target_text_file)
