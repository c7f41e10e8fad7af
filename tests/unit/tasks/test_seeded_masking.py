"""Masked-LM masks that a resumed run redraws exactly: a function of the seed, the epoch and the batch."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from tlnlp.tasks.language_modeling.blocks import (
    MaskingEpochCallback,
    SeededMaskingCollator,
    lm_collator,
    tokenize_for_lm,
)

TEXTS = ["what is the capital of france ?", "who wrote the play hamlet ?", "how far away is the moon ?"] * 20


def _masks(collator, rows, rng_seed):
    torch.manual_seed(rng_seed)  # the global RNG's history must not matter
    batch = collator([dict(row) for row in rows])
    return batch["input_ids"], batch["labels"]


def test_the_same_batch_in_the_same_epoch_gets_the_same_masks_whatever_the_global_rng(tokenizer):
    rows = list(tokenize_for_lm(TEXTS, tokenizer, max_seq_length=32, objective="mlm"))
    collator = lm_collator(tokenizer, "mlm", seed=7)
    assert isinstance(collator, SeededMaskingCollator)
    first, again = _masks(collator, rows, 0), _masks(collator, rows, 123)
    assert first[0].equal(again[0]) and first[1].equal(again[1])
    assert (first[1] != -100).any()
    # another batch, another epoch or another seed masks afresh
    assert not _masks(collator, rows[1:], 0)[1].equal(first[1][1:])
    MaskingEpochCallback(collator).on_epoch_begin(None, SimpleNamespace(epoch=1.0), None)
    assert collator.epoch == 1 and not _masks(collator, rows, 0)[1].equal(first[1])
    assert not _masks(lm_collator(tokenizer, "mlm", seed=8), rows, 0)[1].equal(first[1])


def test_a_resumed_state_keeps_the_epoch_it_is_in(tokenizer):
    collator = lm_collator(tokenizer, "mlm")
    MaskingEpochCallback(collator).on_epoch_begin(None, SimpleNamespace(epoch=1.6667), None)
    assert collator.epoch == 1
    MaskingEpochCallback(collator).on_epoch_begin(None, SimpleNamespace(epoch=None), None)
    assert collator.epoch == 0
