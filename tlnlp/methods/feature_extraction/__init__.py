"""``--method feature_extraction``: encode once with the frozen sentence encoder, fit a linear head."""

from tlnlp.methods.feature_extraction.method import FeatureExtraction

__all__ = ["FeatureExtraction"]
