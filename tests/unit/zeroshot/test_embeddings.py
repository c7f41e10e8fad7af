"""Embedding similarity: mean pooling over real tokens, batch-independent embeddings, probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.unit.zeroshot.conftest import LABELS, TEXTS
from tlnlp.zeroshot import embed_texts, mean_pool, score_embeddings, similarity_probabilities


@pytest.fixture(scope="module")
def encoder():
    from transformers import AutoModel

    from tests.conftest import tiny_config

    torch.manual_seed(0)
    return AutoModel.from_config(tiny_config("bert", hidden_dropout_prob=0.0)).eval()


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_embeddings_do_not_depend_on_batching_or_padding(encoder, tokenizer):
    together = embed_texts(encoder, tokenizer, TEXTS, batch_size=8)
    alone = np.concatenate([embed_texts(encoder, tokenizer, [t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-6)


def test_scores_are_cosines_averaged_over_templates(encoder, tokenizer):
    texts = embed_texts(encoder, tokenizer, TEXTS)
    per_template = []
    for template in ("{}", "This text is about {}."):
        labels = embed_texts(encoder, tokenizer, [template.format(label) for label in LABELS])
        per_template.append(texts @ labels.T)
        got = score_embeddings(encoder, tokenizer, TEXTS, LABELS, templates=template)
        np.testing.assert_allclose(got, per_template[-1], atol=1e-5)
    both = score_embeddings(encoder, tokenizer, TEXTS, LABELS, templates=["{}", "This text is about {}."])
    np.testing.assert_allclose(both, np.mean(per_template, axis=0), atol=1e-5)


def test_a_classifier_is_scored_through_its_backbone(tiny_classifier, tokenizer):
    model = tiny_classifier("bert")
    via_head = score_embeddings(model, tokenizer, TEXTS, LABELS)
    bare = score_embeddings(model.bert, tokenizer, TEXTS, LABELS)
    np.testing.assert_allclose(via_head, bare, atol=1e-6)


def test_similarity_probabilities():
    sims = np.array([[0.9, 0.1, 0.2], [0.3, 0.35, 0.2]])
    single = similarity_probabilities(sims, temperature=0.05)
    np.testing.assert_allclose(single.sum(axis=1), 1.0)
    assert single.argmax(axis=1).tolist() == [0, 1]
    multi = similarity_probabilities(sims, multi_label=True, temperature=0.05)
    assert ((multi > 0) & (multi < 1)).all() and (multi[0] > 0.5).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="temperature"):
        similarity_probabilities(sims, temperature=0)


@pytest.mark.slow
def test_bundled_minilm_as_is_separates_obvious_topics():
    from tlnlp.zeroshot import load_encoder

    model, tokenizer = load_encoder("bundled:minilm", device="cpu")
    texts = ["The striker scored twice as the team won the cup final.",
             "Shares in the bank fell after profits dropped by a third.",
             "The new laptop has a faster processor and a better screen."]
    scores = score_embeddings(model, tokenizer, texts, ["sports", "business", "technology"],
                              templates="This text is about {}.")
    assert scores.argmax(axis=1).tolist() == [0, 1, 2]
