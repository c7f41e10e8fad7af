"""Sentence encoders: a sentence-transformers folder pools as its files say; a plain model is mean-pooled, loudly."""

import logging

import numpy as np
import pytest
import torch
from transformers import AutoModel

from tests.conftest import tiny_config
from tlnlp.config import ModelArgs
from tlnlp.models.sentence import describe_encoder, has_sentence_config, load_sentence_encoder

TEXTS = ["a warm, funny and moving film", "Shares fell five percent today.", "x"]


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory, tokenizer):
    """A tiny BERT encoder saved like a Hub folder, with no sentence-transformers files."""
    folder = tmp_path_factory.mktemp("plain_bert")
    torch.manual_seed(0)
    AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _states(folder, texts):
    model = AutoModel.from_pretrained(folder).eval()
    from transformers import AutoTokenizer

    batch = AutoTokenizer.from_pretrained(folder)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state, batch["attention_mask"]


def test_a_plain_model_is_mean_pooled_and_says_so(plain_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="tlnlp.models.sentence"):
        loaded = load_sentence_encoder(ModelArgs(model_name_or_path=str(plain_dir)), device="cpu")
    assert not loaded.own_config and not has_sentence_config(str(plain_dir))
    assert "mean pooling" in loaded.pooling and "no sentence-transformers config" in loaded.pooling
    assert "mean of its token states" in caplog.text
    hidden, mask = _states(plain_dir, TEXTS)
    expected = ((hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)).numpy()
    np.testing.assert_allclose(loaded.encoder.encode(TEXTS, convert_to_numpy=True), expected, atol=1e-5)


def test_a_sentence_transformers_folder_pools_as_its_files_say(plain_dir, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    body = Transformer(str(plain_dir), max_seq_length=16)
    SentenceTransformer(modules=[body, Pooling(32, pooling_mode="cls"), Normalize()]).save(str(tmp_path / "cls"))
    loaded = load_sentence_encoder(ModelArgs(model_name_or_path=str(tmp_path / "cls")), device="cpu")
    assert loaded.own_config and has_sentence_config(str(tmp_path / "cls"))
    assert loaded.pooling.startswith("cls pooling, normalised, up to 16 tokens")  # not mean pooling
    hidden, _ = _states(plain_dir, TEXTS)
    first = hidden[:, 0].numpy()
    expected = first / np.linalg.norm(first, axis=1, keepdims=True)
    np.testing.assert_allclose(loaded.encoder.encode(TEXTS, convert_to_numpy=True), expected, atol=1e-5)


def test_bundled_minilm_is_read_from_its_own_config():
    loaded = load_sentence_encoder(ModelArgs(model_name_or_path="bundled:minilm"), device="cpu")
    assert loaded.own_config
    assert describe_encoder(loaded.encoder) == "mean pooling, normalised, up to 256 tokens"


def test_zero_shot_embeddings_are_unchanged_for_minilm():
    """The bundled MiniLM encodes exactly as tlnlp's own mean pooling did before sentence-transformers took over."""
    from tlnlp.zeroshot import embed_texts, load_encoder

    encoder, tokenizer = load_encoder("bundled:minilm", device="cpu")
    got = embed_texts(encoder, tokenizer, TEXTS, max_length=64)
    hf = AutoModel.from_pretrained(encoder[0].auto_model.name_or_path).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        hidden = hf(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1)
    mean = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    np.testing.assert_allclose(got, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)
    assert encoder.max_seq_length == 256  # the call's max_length did not stick


def _linear_output_dtypes(encoder, run):
    """The dtypes the encoder's linear layers produced while ``run()`` encoded."""
    seen = set()
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.add(out.dtype))
             for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    try:
        result = run()
    finally:
        for hook in hooks:
            hook.remove()
    return seen, result


def test_bf16_encoding_runs_the_matmuls_in_bf16_and_returns_unit_float32_rows(plain_dir):
    from tlnlp.models.sentence_classifier import SentenceTransformerForSequenceClassification, encode_normalized

    encoder = load_sentence_encoder(ModelArgs(model_name_or_path=str(plain_dir)), device="cpu").encoder
    fp32_dtypes, fp32 = _linear_output_dtypes(encoder, lambda: encode_normalized(encoder, TEXTS))
    bf16_dtypes, bf16 = _linear_output_dtypes(encoder, lambda: encode_normalized(encoder, TEXTS, bf16=True))
    assert fp32_dtypes == {torch.float32} and bf16_dtypes == {torch.bfloat16}
    assert bf16.dtype == np.float32 and np.allclose(np.linalg.norm(bf16, axis=1), 1.0, atol=1e-5)
    assert (fp32 * bf16).sum(axis=1).min() > 0.99  # the same directions, up to bf16 rounding
    assert next(encoder.parameters()).dtype == torch.float32  # weights untouched

    classifier = SentenceTransformerForSequenceClassification(encoder, np.zeros((2, fp32.shape[1])), np.zeros(2),
                                                              ["a", "b"], bf16=True)
    dtypes, _ = _linear_output_dtypes(encoder, lambda: classifier.predict_proba(TEXTS))
    assert dtypes == {torch.bfloat16}
