"""Feature extraction as users of frozen encoders expect it: embed the rows once, then fit a head on the vectors."""

from __future__ import annotations

from typing import Any

from tlnlp.methods.base import register_method
from tlnlp.methods.heads.method import EmbeddingMethod, FitInputs, FitOutcome
from tlnlp.methods.heads.options import HeadOptions, check_head_options

__all__ = ["FeatureExtraction"]


@register_method
class FeatureExtraction(EmbeddingMethod):
    """``--method feature_extraction``: the frozen encoder's sentence embeddings (its own pooling) and a linear head.

    The training rows are encoded once (pooling, normalisation and length from the model's sentence-transformers
    files; mean pooling for a plain transformers model), then the head is fitted on the vectors: scikit-learn
    logistic regression by default, a torch linear layer with ``--head linear``, either one started at and pulled
    towards the zero-shot prototypes with ``--head_init zero_shot``. The encoder's weights never change.
    """

    name = "feature_extraction"
    options = HeadOptions
    trains_encoder = False
    description = ("Feature extraction: the pretrained sentence encoder is frozen (its weights are unchanged); the "
                   "training texts are encoded once and a linear {head} is fitted on their sentence embeddings.")

    def validate(self, args: Any) -> None:
        """Check the head flags (every method's run carries them)."""
        check_head_options(args)

    def fit(self, encoder: Any, inputs: FitInputs, args: Any) -> FitOutcome:
        """Encode the rows once with the frozen ``encoder`` and fit the head."""
        return self.fit_head_on(encoder, inputs, args)
