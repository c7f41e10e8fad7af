"""Linear heads over sentence embeddings: options, fitting (with the zero-shot prior) and the method base class."""

from tlnlp.methods.heads.fit import FittedHead, choose_prior_strength, fit_head
from tlnlp.methods.heads.method import EmbeddingMethod, FitInputs, FitOutcome, head_section
from tlnlp.methods.heads.options import (
    HEAD_INITS,
    HEADS,
    PER_CLASS_GRID,
    HeadOptions,
    LabelPrior,
    check_head_options,
    prior_strength,
)

__all__ = [
    "HEADS",
    "HEAD_INITS",
    "PER_CLASS_GRID",
    "EmbeddingMethod",
    "FitInputs",
    "FitOutcome",
    "FittedHead",
    "HeadOptions",
    "LabelPrior",
    "check_head_options",
    "choose_prior_strength",
    "fit_head",
    "head_section",
    "prior_strength",
]
