"""The proxy A-distance between two domains' representations (Ben-David et al. 2007; Ganin et al. 2016).

A linear classifier learns to tell source rows from target rows on one half of the rows; its error ``err`` on the
other half gives ``d_A = 2 (1 - 2 err)``: about 2 when the domains are told apart perfectly, about 0 when they
cannot be told apart (a value a little below 0 is chance, too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import datasets
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers import DataCollatorWithPadding

from tlnlp.domain.adversary import HeadInput

__all__ = ["ADistance", "encode_representations", "proxy_a_distance"]

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Regularisation strengths tried (3-fold cross-validation on the training half only).
_CS = tuple(float(c) for c in np.logspace(-4, 2, 7))


@dataclass
class ADistance:
    """A proxy A-distance and how it was measured.

    Attributes:
        value: ``2 (1 - 2 err)``.
        error: The linear classifier's error on the held-out half.
        rows_per_domain: Rows of each domain used (the larger side is subsampled).
        held_out_rows: Rows the error was measured on.
    """

    value: float
    error: float
    rows_per_domain: int
    held_out_rows: int

    def to_dict(self) -> dict[str, Any]:
        """The fields, for a results file."""
        return asdict(self)


def proxy_a_distance(source: Any, target: Any, seed: int = 0, held_out: float = 0.5) -> ADistance:
    """Train a linear classifier to tell ``source`` rows from ``target`` rows; ``d_A`` from its held-out error.

    The larger side is subsampled (seeded) to the smaller one's size; a stratified ``held_out`` fraction is set
    aside; standardised features feed an L2 logistic regression whose strength is chosen by 3-fold
    cross-validation on the training part only.

    Args:
        source: ``rows x features`` representations of the source domain.
        target: ``rows x features`` representations of the target domain.
        seed: Seed of the subsampling, the split and the folds.
        held_out: Fraction of the rows the error is measured on.

    Returns:
        The :class:`ADistance`.

    Raises:
        ValueError: Fewer than 6 rows per domain, or feature sizes that differ.
    """
    a, b = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"source and target must be rows x features of one size; got {a.shape} and {b.shape}.")
    n = min(len(a), len(b))
    if n < 6:
        raise ValueError(f"The proxy A-distance needs at least 6 rows per domain; got {len(a)} and {len(b)}.")
    rng = np.random.default_rng(seed)
    a, b = a[np.sort(rng.permutation(len(a))[:n])], b[np.sort(rng.permutation(len(b))[:n])]
    x, y = np.vstack([a, b]), np.array([0] * n + [1] * n)
    x_fit, x_test, y_fit, y_test = train_test_split(x, y, test_size=held_out, stratify=y, random_state=seed)
    folds = StratifiedKFold(n_splits=max(2, min(3, int(min(np.bincount(y_fit))))), shuffle=True, random_state=seed)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    classifier = GridSearchCV(linear, {"logisticregression__C": list(_CS)}, cv=folds)
    classifier.fit(x_fit, y_fit)
    error = float(1.0 - classifier.score(x_test, y_test))
    return ADistance(value=2.0 * (1.0 - 2.0 * error), error=error, rows_per_domain=n, held_out_rows=len(y_test))


def encode_representations(model: torch.nn.Module, representation: HeadInput, rows: datasets.Dataset,
                           collator: DataCollatorWithPadding, batch_size: int = 64) -> np.ndarray:
    """The representation the classification head reads, for every tokenised row (eval mode, no gradients).

    Args:
        model: The classifier (on its device).
        representation: The hook on its head.
        rows: Tokenised rows (extra columns are ignored).
        collator: Pads a list of rows.
        batch_size: Rows per forward pass.

    Returns:
        ``rows x hidden`` float32 features.
    """
    keys = [k for k in _INPUTS if k in rows.column_names]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    found = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            part = rows.select(range(start, min(start + batch_size, len(rows))))
            batch = {k: v.to(device) for k, v in collator([{k: r[k] for k in keys} for r in part]).items()}
            model(**batch)
            found.append(representation.pooled(batch.get("attention_mask")).float().cpu())
    model.train(was_training)
    return torch.cat(found).numpy() if found else np.zeros((0, 0), dtype=np.float32)
