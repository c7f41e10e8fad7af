"""Label-entailment pairs: one entailment pair per gold label, negatives sampled without the gold label."""

from __future__ import annotations

import numpy as np
import pytest

from tlnlp.zeroshot import ENTAILMENT_LABELS, EntailmentArgs, build_entailment_pairs

HYPS = [[f"This example is {name}." for name in ("sports", "business", "politics", "tech", "film")]]


def _rows(n=200, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n).tolist()
    return [f"text {i}" for i in range(n)], labels


@pytest.mark.parametrize("num_negatives", [1, 2, 4])
def test_each_example_gives_its_entailment_pair_and_k_distinct_negatives_never_the_gold(num_negatives):
    texts, labels = _rows()
    pairs = build_entailment_pairs(texts, labels, HYPS, num_negatives=num_negatives, seed=3)
    assert set(pairs) == {"text", "text_pair", "label"}
    assert len(pairs["text"]) == len(texts) * (1 + num_negatives)
    by_text: dict[str, list[tuple[str, int]]] = {}
    for text, hyp, label in zip(pairs["text"], pairs["text_pair"], pairs["label"], strict=True):
        by_text.setdefault(text, []).append((hyp, label))
    for text, gold in zip(texts, labels, strict=True):
        rows = by_text[text]
        assert rows[0] == (HYPS[0][gold], 0)  # entailment (id 0) first, with the gold label's hypothesis
        negatives = [hyp for hyp, label in rows[1:]]
        assert all(label == 1 for _, label in rows[1:])
        assert HYPS[0][gold] not in negatives  # never the gold label among the negatives
        assert len(set(negatives)) == num_negatives  # each negative a different wrong label
    assert ENTAILMENT_LABELS == ("entailment", "not_entailment")


def test_negatives_cover_the_wrong_labels_and_are_seeded():
    texts, labels = _rows(n=400)
    a = build_entailment_pairs(texts, labels, HYPS, num_negatives=1, seed=1)
    b = build_entailment_pairs(texts, labels, HYPS, num_negatives=1, seed=1)
    c = build_entailment_pairs(texts, labels, HYPS, num_negatives=1, seed=2)
    assert a == b and a != c
    negatives = {h for h, label in zip(a["text_pair"], a["label"], strict=True) if label == 1}
    assert negatives == set(HYPS[0])  # sampling reaches every class as a negative over many examples


def test_all_negatives_and_more_than_there_are():
    texts, labels = _rows(n=20)
    every = build_entailment_pairs(texts, labels, HYPS, num_negatives=-1)
    assert len(every["label"]) == 20 * 5 and sum(every["label"]) == 20 * 4
    capped = build_entailment_pairs(texts, labels, HYPS, num_negatives=10)
    assert len(capped["label"]) == 20 * 5  # at most every wrong label once


def test_multi_label_examples_entail_every_gold_label():
    pairs = build_entailment_pairs(["a", "b"], [[0, 2], [1]], HYPS, num_negatives=-1)
    rows_a = [(h, label) for t, h, label in zip(pairs["text"], pairs["text_pair"], pairs["label"], strict=True)
              if t == "a"]
    assert sorted(h for h, label in rows_a if label == 0) == sorted([HYPS[0][0], HYPS[0][2]])
    assert {h for h, label in rows_a if label == 1} == {HYPS[0][1], HYPS[0][3], HYPS[0][4]}


def test_several_templates_are_sampled_per_pair():
    templates = [HYPS[0], [f"Topic: {name}" for name in ("sports", "business", "politics", "tech", "film")]]
    texts, labels = _rows(n=100)
    pairs = build_entailment_pairs(texts, labels, templates, num_negatives=1, seed=0)
    used = {h.split(" ")[0] for h in pairs["text_pair"]}
    assert used == {"This", "Topic:"}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="num_negatives"):
        build_entailment_pairs(["a"], [0], HYPS, num_negatives=0)
    with pytest.raises(ValueError, match="one label per text"):
        build_entailment_pairs(["a", "b"], [0], HYPS)
    with pytest.raises(ValueError, match="Row 0.*0..4"):
        build_entailment_pairs(["a"], [7], HYPS)
    with pytest.raises(ValueError, match="num_negatives"):
        EntailmentArgs(num_negatives=-2)
    with pytest.raises(ValueError, match="never saw"):
        EntailmentArgs(train_datasets=["bundled:trec6"], zero_shot_eval_datasets=["bundled:trec6"])
    with pytest.raises(ValueError, match="slot"):
        EntailmentArgs(hypothesis_template="no slot")
