"""From word log-likelihoods to label probabilities, and contextual calibration (Zhao et al. 2021).

"Calibrate Before Use" (Zhao, Wallace, Feng, Klein and Singh, ICML 2021) measures a prompt's bias toward some
labels by asking the model about content-free inputs ("N/A", "", "[MASK]") through the same prompt: an unbiased
prompt would give each label equal probability there. The mean content-free probabilities ``p_cf`` then
correct every prediction: ``q = normalise(p / p_cf)`` (their ``W = diag(p_cf)^-1``, ``b = 0``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_CONTENT_FREE", "NORMALIZATIONS", "contextual_calibration", "label_log_scores", "softmax"]

#: Content-free inputs of Zhao et al. (2021).
DEFAULT_CONTENT_FREE = ("N/A", "", "[MASK]")
#: How a word's token log-likelihoods are combined: summed, or averaged over its tokens (length-normalised).
NORMALIZATIONS = ("sum", "mean")


def label_log_scores(word_ll: np.ndarray, word_tokens: Sequence[int], word_labels: Sequence[int], num_labels: int,
                     normalization: str = "sum") -> np.ndarray:
    """One score per label from the log-likelihoods of its words.

    A word scores its summed token log-likelihood (``sum``) or that sum divided by its number of tokens
    (``mean``). A label with several words scores the log of the summed exponentiated word scores (for ``sum``:
    the probability that the model continues with any of its words).

    Args:
        word_ll: ``rows x words`` summed log-likelihoods.
        word_tokens: Number of tokens of each word.
        word_labels: Class id of each word.
        num_labels: Number of classes; every class needs at least one word.
        normalization: ``sum`` or ``mean``.

    Returns:
        ``rows x num_labels`` log-scores.

    Raises:
        ValueError: Unknown normalization, mismatched lengths, or a class without words.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r} is not valid; choose one of: {', '.join(NORMALIZATIONS)}.")
    word_ll = np.asarray(word_ll, dtype=np.float64)
    if word_ll.ndim != 2 or word_ll.shape[1] != len(word_tokens) or len(word_tokens) != len(word_labels):
        raise ValueError(f"word_ll has shape {word_ll.shape}; expected rows x {len(word_tokens)} words.")
    scores = word_ll / np.asarray(word_tokens, dtype=np.float64) if normalization == "mean" else word_ll
    labels = np.asarray(word_labels)
    out = np.empty((word_ll.shape[0], num_labels))
    for label in range(num_labels):
        columns = scores[:, labels == label]
        if columns.shape[1] == 0:
            raise ValueError(f"Class {label} has no words in the verbalizer.")
        top = columns.max(axis=1, keepdims=True)
        out[:, label] = (top + np.log(np.exp(columns - top).sum(axis=1, keepdims=True)))[:, 0]
    return out


def softmax(log_scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax (numerically stable)."""
    z = np.asarray(log_scores, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def contextual_calibration(probs: np.ndarray, content_free_probs: np.ndarray) -> np.ndarray:
    """Divide each row's label probabilities by the mean content-free probabilities and renormalise.

    Args:
        probs: ``rows x labels`` probabilities of the real inputs.
        content_free_probs: ``inputs x labels`` probabilities of the content-free inputs (through the same
            prompt), or their mean as one row.

    Returns:
        ``rows x labels`` calibrated probabilities (each row sums to 1).

    Raises:
        ValueError: Shapes that do not match, or a content-free probability that is not positive.
    """
    probs = np.asarray(probs, dtype=np.float64)
    cf = np.atleast_2d(np.asarray(content_free_probs, dtype=np.float64)).mean(axis=0)
    if probs.ndim != 2 or cf.shape[0] != probs.shape[1]:
        raise ValueError(f"probs {probs.shape} and content-free probabilities {cf.shape} disagree on the number "
                         "of labels.")
    if (cf <= 0).any():
        raise ValueError("Content-free probabilities must be positive to divide by them.")
    weighted = probs / cf
    return weighted / weighted.sum(axis=1, keepdims=True)
