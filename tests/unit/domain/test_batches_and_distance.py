"""Source and target rows in every batch (pairing, collator) and the proxy A-distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlnlp.domain import (
    IGNORE_INDEX,
    SOURCE,
    TARGET,
    DomainMixCollator,
    HeadInput,
    encode_representations,
    pair_with_target,
    proxy_a_distance,
    tokenize_texts,
)

SOURCE_TEXTS = ["great product", "broke after a day", "works as described", "terrible battery life", "love it"]
TARGET_TEXTS = ["a moving film", "the plot drags on and on and on", "superb acting"]


@pytest.fixture
def paired(tokenizer):
    source = tokenize_texts(SOURCE_TEXTS, tokenizer, 16, labels=[1, 0, 1, 0, 1])
    target = tokenize_texts(TARGET_TEXTS, tokenizer, 16)
    return source, target, pair_with_target(source, target, seed=3)


def test_tokenize_texts_truncates_and_keeps_labels(tokenizer):
    rows = tokenize_texts(["one two three four five six seven"], tokenizer, 5, labels=[1])
    assert len(rows[0]["input_ids"]) == 5 and rows[0]["labels"] == 1
    assert "labels" not in tokenize_texts(["x"], tokenizer, 5).column_names


def test_pairing_gives_every_source_row_a_target_row_seeded_and_cycled(paired, tokenizer):
    source, target, rows = paired
    assert len(rows) == len(SOURCE_TEXTS)
    assert rows["input_ids"] == source["input_ids"] and rows["labels"] == source["labels"]
    decoded = [tokenizer.decode(ids, skip_special_tokens=True) for ids in rows["target_input_ids"]]
    assert set(decoded) == set(TARGET_TEXTS)  # 3 target rows cycled over 5 source rows: every one used
    assert decoded[:3] != decoded[3:] or len(set(decoded[:3])) == 3
    assert len(set(decoded[:3])) == 3  # one full permutation before any repeat
    assert rows["length"] == [max(len(a), len(b)) for a, b in zip(rows["input_ids"], rows["target_input_ids"],
                                                                  strict=True)]
    again = pair_with_target(source, target, seed=3)
    assert again["target_input_ids"] == rows["target_input_ids"]  # same on every process and after a resume
    other = [pair_with_target(source, target, seed=s)["target_input_ids"] for s in range(6)]
    assert any(o != rows["target_input_ids"] for o in other)
    with pytest.raises(ValueError, match="non-empty"):
        pair_with_target(source, target.select([]), seed=0)


def test_collator_puts_source_rows_then_target_rows_and_labels_only_the_source(paired, tokenizer):
    _, _, rows = paired
    batch = DomainMixCollator(tokenizer)([rows[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 8 and "length" not in batch
    assert batch["domain_labels"].tolist() == [SOURCE] * 4 + [TARGET] * 4
    assert batch["labels"].tolist() == [1, 0, 1, 0] + [IGNORE_INDEX] * 4
    assert batch["attention_mask"].shape == batch["input_ids"].shape
    for i in range(4):  # each half holds its own rows, padded together
        length = len(rows[i]["target_input_ids"])
        assert batch["input_ids"][4 + i, :length].tolist() == rows[i]["target_input_ids"]
        assert int(batch["attention_mask"][4 + i].sum()) == length
        assert batch["input_ids"][i, :len(rows[i]["input_ids"])].tolist() == rows[i]["input_ids"]
    plain = DomainMixCollator(tokenizer)([{"input_ids": [101, 7592, 102], "attention_mask": [1, 1, 1],
                                           "labels": 1}])
    assert "domain_labels" not in plain and plain["labels"].tolist() == [1]  # evaluation rows as they are


def test_a_distance_tells_separable_domains_from_identical_ones():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(200, 16))
    shifted = rng.normal(size=(200, 16)) + np.r_[8.0, np.zeros(15)]
    separable = proxy_a_distance(source, shifted, seed=0)
    assert separable.value > 1.9 and separable.error < 0.03
    assert separable.rows_per_domain == 200 and separable.held_out_rows == 200
    same = proxy_a_distance(source, rng.normal(size=(200, 16)), seed=0)  # two samples of one distribution
    assert abs(same.value) < 0.3 and 0.42 < same.error < 0.58
    copies = proxy_a_distance(source, source.copy(), seed=0)  # the very same rows: no better than chance
    assert copies.value < 0.35 and copies.error > 0.41
    mixed = proxy_a_distance(source, rng.normal(size=(200, 16)) + np.r_[0.6, np.zeros(15)], seed=0)
    assert same.value < mixed.value < separable.value  # partly overlapping domains lie in between
    assert proxy_a_distance(source, shifted, seed=0) == separable  # seeded
    uneven = proxy_a_distance(source[:50], shifted, seed=1)
    assert uneven.rows_per_domain == 50 and uneven.value > 1.8
    with pytest.raises(ValueError, match="one size"):
        proxy_a_distance(source, shifted[:, :3])
    with pytest.raises(ValueError, match="at least 6"):
        proxy_a_distance(source[:3], shifted)


def test_encode_representations_gives_the_head_input_of_every_row(tiny_classifier, tokenizer):
    from transformers import DataCollatorWithPadding

    model = tiny_classifier("bert")
    model.train()
    rows = tokenize_texts(SOURCE_TEXTS, tokenizer, 16, labels=[1, 0, 1, 0, 1])
    captured = HeadInput(model)
    features = encode_representations(model, captured, rows, DataCollatorWithPadding(tokenizer), batch_size=2)
    assert features.shape == (5, 32) and model.training  # back in training mode
    with torch.no_grad():
        model.eval()
        one = tokenizer(SOURCE_TEXTS[3], return_tensors="pt")
        expected = model.bert(**one).pooler_output[0]
    assert np.allclose(features[3], expected.numpy(), atol=1e-5)
