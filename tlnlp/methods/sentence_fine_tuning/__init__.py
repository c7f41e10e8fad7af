"""``--method sentence_fine_tuning``: the sentence encoder and a linear head over its embeddings, trained together."""

from tlnlp.methods.sentence_fine_tuning.method import SentenceFineTuning

__all__ = ["SentenceFineTuning"]
