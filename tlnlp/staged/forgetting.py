"""After the chain: how much of each earlier stage the final model forgot, and whether the chain beat its target alone.

Forgetting is measured where it can be: an earlier stage whose labels are the final stage's is scored again with the
final model, on the split its own stage was scored on (test, else validation), and compared with its accuracy right
after its own stage. A stage with other labels had its head replaced, so its task cannot be scored any more: its
entry says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from tlnlp.staged.data import same_label_space
from tlnlp.staged.records import StageRecord, accuracy_of
from tlnlp.tasks import classification_metrics, predictions_from_logits
from tlnlp.tasks.classification.predictions import gold_matrix

__all__ = ["NOT_MEASURABLE", "compare_with_baseline", "measure_forgetting", "score_split"]

logger = logging.getLogger(__name__)

#: Why forgetting of a stage with other labels is not measured.
NOT_MEASURABLE = ("not measurable: its labels differ from the final stage's, so its head was replaced and the final "
                  "model cannot score its task")
_SPLITS = {"test": "test", "validation": "validation"}


def score_split(model: Any, tokenizer: Any, rows: Any, max_length: int, batch_size: int = 64) -> np.ndarray:
    """Logits of ``model`` for every row of a classification split (``text`` and optional ``text_pair``), in order.

    Args:
        model: A sequence classifier (in eval mode or not; it is put in eval mode).
        tokenizer: Its tokenizer.
        rows: A ``datasets.Dataset`` with ``text`` (and ``text_pair``).
        max_length: Inputs are truncated to this many tokens, as in training.
        batch_size: Rows per forward pass.

    Returns:
        ``rows x labels`` logits.
    """
    model.eval()
    device = next(model.parameters()).device
    pair = "text_pair" in rows.column_names
    found = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            encoded = tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True,
                                max_length=max_length, padding=True, return_tensors="pt")
            allowed = set(getattr(tokenizer, "model_input_names", encoded.keys()))
            inputs = {k: v.to(device) for k, v in encoded.items() if k in allowed}
            found.append(model(**inputs).logits.float().cpu().numpy())
    return np.concatenate(found) if found else np.zeros((0, model.config.num_labels), dtype=np.float32)


def _accuracy(model: Any, tokenizer: Any, data: Any, split: str, max_length: int, labels: list[str]) -> float:
    rows = data.splits[split]
    logits = score_split(model, tokenizer, rows, max_length)
    # the stage's label ids -> the final model's (same names, possibly another order)
    order = [labels.index(name) for name in data.labels]
    gold = gold_matrix(rows, data.num_labels, data.multi_label)
    gold = gold[:, np.argsort(order)] if data.multi_label else np.asarray([order[y] for y in gold], dtype=np.int64)
    preds = predictions_from_logits(logits, data.multi_label)
    return float(classification_metrics(gold, preds, len(labels), data.multi_label)["accuracy"])


def measure_forgetting(records: Sequence[StageRecord], datas: Sequence[Any], final: tuple[Any, Any] | None,
                       max_lengths: Sequence[int]) -> list[dict[str, Any]]:
    """One entry per earlier stage: its accuracy after its own stage, after the whole chain, and the difference.

    Args:
        records: Every stage's record, the final stage last.
        datas: Every stage's own data (no rehearsal rows), same order.
        final: ``(model, tokenizer)`` of the final model; None when no earlier stage shares the final labels.
        max_lengths: Each stage's ``max_seq_length``.

    Returns:
        Per earlier stage: ``stage``, ``dataset``, ``measurable``; when measurable also ``split``,
        ``accuracy_after_stage``, ``accuracy_after_chain`` and ``forgetting`` (after its stage minus after the
        chain: positive means forgotten); otherwise ``reason``.
    """
    final_data, final_labels = datas[-1], list(records[-1].labels)
    entries = []
    for record, data, max_length in zip(records[:-1], datas[:-1], max_lengths[:-1], strict=True):
        entry: dict[str, Any] = {"stage": record.index, "dataset": record.dataset}
        own = accuracy_of(record)
        if not same_label_space(data, final_data) or final is None or own is None:
            reason = NOT_MEASURABLE if own is not None else "not measurable: the stage has no validation or test split"
            entries.append({**entry, "measurable": False, "reason": reason})
            continue
        split, before = own
        after = _accuracy(final[0], final[1], data, _SPLITS[split], max_length, final_labels)
        logger.info("Forgetting, stage %d (%s, %s): accuracy %.4f after its stage, %.4f after the chain.",
                    record.index, record.dataset, split, before, after)
        entries.append({**entry, "measurable": True, "split": split, "accuracy_after_stage": before,
                        "accuracy_after_chain": after, "forgetting": before - after})
    return entries


def compare_with_baseline(chained: StageRecord, baseline: StageRecord) -> dict[str, Any]:
    """The chain's final accuracy against the target-only baseline's, on the same split; negative transfer flagged.

    Returns:
        ``baseline`` (``"target_only"``), ``split``, ``chained_accuracy``, ``baseline_accuracy``, ``gain``
        (chained minus baseline), ``negative_transfer`` (chained below baseline) and the baseline's ``folder``.

    Raises:
        ValueError: Neither run has a test or validation accuracy.
    """
    mine, theirs = accuracy_of(chained), accuracy_of(baseline)
    if mine is None or theirs is None or mine[0] != theirs[0]:
        raise ValueError("The chain and the target-only baseline have no accuracy on a common split (the last "
                         "stage's data needs a test or validation split).")
    gain = mine[1] - theirs[1]
    return {"baseline": "target_only", "split": mine[0], "chained_accuracy": mine[1], "baseline_accuracy": theirs[1],
            "gain": gain, "negative_transfer": bool(gain < 0), "folder": baseline.name}
