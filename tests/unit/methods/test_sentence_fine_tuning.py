"""The module ``--method sentence_fine_tuning`` trains: encoder + linear head, the pull towards the prototypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlnlp.methods.sentence_fine_tuning.model import EncoderWithHead, tokenize_rows


@pytest.fixture
def encoder(tmp_path, tokenizer):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoModel

    from tests.conftest import tiny_config

    torch.manual_seed(0)
    AutoModel.from_config(tiny_config("bert", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
                          ).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    body = Transformer(str(tmp_path), max_seq_length=16)
    return SentenceTransformer(modules=[body, Pooling(body.get_embedding_dimension(), pooling_mode="mean")],
                               device="cpu")


def _batch(encoder, texts, labels):
    rows = tokenize_rows(encoder, texts, labels, max_length=8)
    padded = encoder.tokenizer.pad({k: rows[k] for k in rows.column_names if k != "labels"}, return_tensors="pt")
    return dict(padded), torch.tensor(rows["labels"])


def test_the_head_starts_at_the_prototypes_and_logits_match_the_saved_classifier(encoder):
    from tlnlp.models.sentence_classifier import encode_normalized

    start = np.random.default_rng(0).normal(size=(2, 32))
    model = EncoderWithHead(encoder, 2, start=start).eval()
    assert torch.allclose(model.head.weight, torch.as_tensor(start, dtype=torch.float32))
    assert torch.all(model.head.bias == 0)
    texts = ["a fine film", "dull and long"]
    features, _ = _batch(encoder, texts, [1, 0])
    with torch.no_grad():
        logits = model(**features).logits.numpy()
    expected = encode_normalized(encoder, texts, max_length=8) @ start.T
    np.testing.assert_allclose(logits, expected, atol=1e-4)  # the same vectors the saved classifier reads


def test_the_pull_is_strength_over_twice_the_rows_times_the_squared_distance(encoder):
    prior = np.ones((2, 32))
    texts, labels = ["good", "bad", "fine", "awful"], [1, 0, 1, 0]
    features, gold = _batch(encoder, texts, labels)
    torch.manual_seed(0)
    free = EncoderWithHead(encoder, 2)
    torch.manual_seed(0)
    pulled = EncoderWithHead(encoder, 2, anchor=(prior, 8.0, 4))
    distance = ((pulled.head.weight - torch.ones(2, 32)) ** 2).sum()
    extra = pulled(**features, labels=gold).loss - free(**features, labels=gold).loss
    assert extra.item() == pytest.approx((8.0 / (2 * 4) * distance).item(), rel=1e-4)
    pulled(**features, labels=gold).loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())  # the encoder trains
    assert pulled.prior.shape == (2, 32) and "prior" not in pulled.state_dict()  # rebuilt, never checkpointed
