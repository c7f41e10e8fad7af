"""``--setfit_epochs_choices``: SetFit's body length chosen by cross-validation on the labelled training rows.

The library trains its body for one pass over its pairs, which at 8 labels per class is a short training (120
steps on TREC-6's 48 rows, 9 on 16 sentiment rows). Given candidate epoch counts, each is scored by stratified
k-fold cross-validation on the run's own labelled rows (k is 3, or the smallest class's row count when smaller):
a body trained from the starting encoder on each fold's rows, the run's own head fitted on its embeddings (an
anchored head at the prototypes as that body embeds them), out-of-fold predictions pooled. The best accuracy wins,
then the lower log-loss, then the fewer epochs. With unlabelled texts (``--self_training_texts``) and
``--self_training_per_class auto``, each fold's body also embeds them and every count of pseudo-labelled texts per
class is scored with every length (the fold's head labels the texts, then fits again): the length is chosen first,
with no self-training, then the count at that length, on bodies that never saw the held-out rows; ties go to the
smaller count. No validation or test label is read. The choice is written into the run's folder, so a resumed
run trains the body it chose before instead of choosing again.
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
import torch
from sklearn.model_selection import StratifiedKFold

from tlnlp.methods.heads.fit import fit_head, logit_scores
from tlnlp.methods.heads.options import PER_CLASS_GRID, pseudo_per_class
from tlnlp.methods.heads.self_training import self_train

__all__ = ["CHOICE_FILE", "choose_body_epochs"]

logger = logging.getLogger(__name__)

#: The choice and its cross-validation table, in the run's folder.
CHOICE_FILE = "setfit_epochs_search.json"
#: The most folds (fewer when the smallest class has fewer rows).
FOLDS = 3


def _counts(inputs: Any, args: Any) -> tuple[int, ...]:
    """The counts of pseudo-labelled texts per class to score on the fold bodies: ``(0,)`` unless chosen here."""
    if inputs.unlabeled and pseudo_per_class(args.self_training_per_class) is None:
        return PER_CLASS_GRID
    return (0,)


def _run_head(inputs: Any, args: Any, body: Any) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The run's own head (``--head``, and its zero-shot prior embedded by ``body``) as a fit of rows -> weights.

    A fold scores the head the run will fit, not a stand-in: an anchored run's folds are anchored too, at the
    prototypes as the fold's body embeds them (``--head_prior_strength auto`` chooses inside each fold's rows).
    """
    prior = inputs.prior.weights(lambda texts: inputs.embed(body, texts)) if inputs.prior is not None else None

    def fit(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.enable_grad():  # the linear head trains with torch
            head = fit_head(x, labels, len(inputs.label_names), args, prior, inputs.seed)  # as fit_head_on does
        return head.weight, head.bias

    return fit


def _fold_scores(encoder: Any, inputs: Any, args: Any, epochs: int, splits: list[tuple[np.ndarray, np.ndarray]],
                 train_body: Callable[[Any, Any, Any], Any]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Out-of-fold logits of bodies of ``epochs`` epochs and their label ids, per count of pseudo-labelled texts.

    The counts are :func:`_counts`'; rows come in fold order.
    """
    y = np.asarray(inputs.labels, dtype=np.int64)
    counts = _counts(inputs, args)
    logits: dict[int, list[np.ndarray]] = {count: [] for count in counts}
    gold = []
    for train, held in splits:
        body = copy.deepcopy(encoder)
        with tempfile.TemporaryDirectory(prefix="tlnlp-setfit-fold-") as tmp:
            fold = dataclasses.replace(inputs, texts=[inputs.texts[i] for i in train], labels=y[train],
                                       output_dir=Path(tmp), resume_from=None, show_progress=False)
            train_body(body, fold, dataclasses.replace(args, setfit_num_epochs=epochs))
        x_train, x_held = (np.asarray(inputs.embed(body, [inputs.texts[i] for i in rows]), dtype=np.float64)
                           for rows in (train, held))
        fit = _run_head(inputs, args, body)
        pool = (np.asarray(inputs.embed(body, inputs.unlabeled), dtype=np.float64) if len(counts) > 1
                else np.zeros((0, x_train.shape[1])))
        first = fit(x_train, y[train])
        for count in counts:  # a count of 0 keeps the first fit
            weight, bias, _ = self_train(x_train, y[train], pool, fit, count, first=first)
            logits[count].append(x_held @ weight.T + bias)
        gold.append(y[held])
    return {count: (np.concatenate(found), np.concatenate(gold)) for count, found in logits.items()}


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
        ``reason`` when a class has a single row: then ``--setfit_num_epochs`` stands). Where the count of
        pseudo-labelled texts was chosen too (after the length): ``self_training_per_class`` and
        ``self_training_search`` (per count, at the chosen length); ``cv_accuracy``/``cv_log_loss`` are each
        length's with no self-training, what the length was chosen by.
    """
    choices = sorted({int(c) for c in args.setfit_epochs_choices})
    y = np.asarray(inputs.labels, dtype=np.int64)
    saved = Path(inputs.output_dir) / CHOICE_FILE if inputs.output_dir is not None else None
    key = {"choices": choices, "rows": len(y), "seed": inputs.seed, "labels": np.bincount(y).tolist()}
    pseudo_counts = _counts(inputs, args)
    if len(pseudo_counts) > 1:
        key["unlabeled"] = len(inputs.unlabeled)
    if getattr(args, "setfit_label_texts", False):  # fold bodies trained on the label texts choose differently
        key["label_texts"] = True
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
    table = {(epochs, count): logit_scores(*scored) for epochs in choices
             for count, scored in _fold_scores(encoder, inputs, args, epochs, splits, train_body).items()}
    # the length first (with no self-training), then the count at that length: few points per choice on few rows
    chosen = max(choices, key=lambda e: (table[e, pseudo_counts[0]][0], -table[e, pseudo_counts[0]][1], -e))
    count = max(pseudo_counts, key=lambda c: (table[chosen, c][0], -table[chosen, c][1], -c))
    logger.info("SetFit: body epochs %s by %d-fold cross-validation on the labelled rows (accuracy %s)", chosen,
                folds, ", ".join(f"{e}: {table[e, pseudo_counts[0]][0]:.3f}" for e in choices))
    found = {"key": key, "chosen": chosen, "choices": choices, "folds": folds,
             "cv_accuracy": {str(e): table[e, pseudo_counts[0]][0] for e in choices},
             "cv_log_loss": {str(e): table[e, pseudo_counts[0]][1] for e in choices}}
    if len(pseudo_counts) > 1:
        found["self_training_per_class"] = count
        found["self_training_search"] = {"folds": folds, "fold_bodies": True,
                                         "cv_accuracy": {str(c): table[chosen, c][0] for c in pseudo_counts},
                                         "cv_log_loss": {str(c): table[chosen, c][1] for c in pseudo_counts}}
        logger.info("SetFit: %d pseudo-labelled texts per class, chosen after the body's epochs", count)
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return chosen, found
