"""``--setfit_epochs_choices``: SetFit's body length chosen by cross-validation on the labelled training rows.

The library trains its body for one pass over its pairs, which at 8 labels per class is a short training (120
steps on TREC-6's 48 rows, 9 on 16 sentiment rows). Given candidate epoch counts, each is scored by stratified
k-fold cross-validation on the run's own labelled rows (k is 3, or the smallest class's row count when smaller):
a body trained from the starting encoder on each fold's rows, the default logistic head fitted on its embeddings,
out-of-fold predictions pooled. The best accuracy wins, then the lower log-loss, then the fewer epochs. No
validation or test label is read. The choice is written into the run's folder, so a resumed run trains the body
it chose before instead of choosing again.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from tlnlp.methods.heads.fit import fit_head, logit_scores
from tlnlp.methods.heads.options import HeadOptions

__all__ = ["CHOICE_FILE", "choose_body_epochs"]

logger = logging.getLogger(__name__)

#: The choice and its cross-validation table, in the run's folder.
CHOICE_FILE = "setfit_epochs_search.json"
#: The most folds (fewer when the smallest class has fewer rows).
FOLDS = 3


def _fold_scores(encoder: Any, inputs: Any, args: Any, epochs: int, splits: list[tuple[np.ndarray, np.ndarray]],
                 train_body: Callable[[Any, Any, Any], Any]) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold logits of bodies of ``epochs`` epochs (rows in fold order) and the matching label ids."""
    y = np.asarray(inputs.labels, dtype=np.int64)
    logits, gold = [], []
    for train, held in splits:
        body = copy.deepcopy(encoder)
        with tempfile.TemporaryDirectory(prefix="tlnlp-setfit-fold-") as tmp:
            fold = dataclasses.replace(inputs, texts=[inputs.texts[i] for i in train], labels=y[train], prior=None,
                                       output_dir=Path(tmp), resume_from=None, show_progress=False)
            train_body(body, fold, dataclasses.replace(args, setfit_num_epochs=epochs))
        x_train, x_held = (np.asarray(inputs.embed(body, [inputs.texts[i] for i in rows]), dtype=np.float64)
                           for rows in (train, held))
        head = fit_head(x_train, y[train], len(inputs.label_names), HeadOptions(), None, inputs.seed)
        logits.append(x_held @ head.weight.T + head.bias)
        gold.append(y[held])
    return np.concatenate(logits), np.concatenate(gold)


def choose_body_epochs(encoder: Any, inputs: Any, args: Any,
                       train_body: Callable[[Any, Any, Any], Any]) -> tuple[int, dict[str, Any]]:
    """The body's epochs among ``args.setfit_epochs_choices``, chosen on ``inputs``' rows; and the search's record.

    Args:
        encoder: The starting sentence encoder (left unchanged: each fold trains a copy).
        inputs: The run's labelled rows (:class:`tlnlp.methods.heads.FitInputs`).
        args: The run's method flags.
        train_body: ``train_body(encoder, inputs, args)``, SetFit's body training.

    Returns:
        The epochs, and ``{"choices", "folds", "cv_accuracy", "cv_log_loss", "chosen"}`` (``folds`` 0 and a
        ``reason`` when a class has a single row: then ``--setfit_num_epochs`` stands).
    """
    choices = sorted({int(c) for c in args.setfit_epochs_choices})
    y = np.asarray(inputs.labels, dtype=np.int64)
    saved = Path(inputs.output_dir) / CHOICE_FILE if inputs.output_dir is not None else None
    key = {"choices": choices, "rows": len(y), "seed": inputs.seed, "labels": np.bincount(y).tolist()}
    if saved is not None and saved.is_file():
        found = json.loads(saved.read_text(encoding="utf-8"))
        if found.get("key") == key:
            logger.info("SetFit: body epochs %s, as chosen before (%s)", found["chosen"], saved)
            return int(found["chosen"]), found
    counts = np.bincount(y)
    folds = int(min(FOLDS, counts[counts > 0].min()))
    if folds < 2:
        logger.warning("setfit_epochs_choices: a class has one labelled row, too few to cross-validate; "
                       "using --setfit_num_epochs %s.", args.setfit_num_epochs)
        return int(args.setfit_num_epochs), {"key": key, "chosen": int(args.setfit_num_epochs), "folds": 0,
                                             "reason": "a class has a single labelled row"}
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=inputs.seed).split(np.zeros(len(y)), y))
    table = {epochs: logit_scores(*_fold_scores(encoder, inputs, args, epochs, splits, train_body))
             for epochs in choices}
    chosen = max(choices, key=lambda e: (table[e][0], -table[e][1], -e))
    logger.info("SetFit: body epochs %s by %d-fold cross-validation on the labelled rows (accuracy %s)", chosen,
                folds, ", ".join(f"{e}: {table[e][0]:.3f}" for e in choices))
    found = {"key": key, "chosen": chosen, "choices": choices, "folds": folds,
             "cv_accuracy": {str(e): table[e][0] for e in choices},
             "cv_log_loss": {str(e): table[e][1] for e in choices}}
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return chosen, found
