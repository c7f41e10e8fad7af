"""Shared fixtures: tiny models built from configs, the bundled tokenizer, small tables of rows."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch's default thread count made tiny runs ~60x slower here
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the Hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# --bf16 auto measures the CPU and may pick bf16; tests compare numbers across code paths and machines, so they
# train in fp32 unless a test asks for bf16 (tests/unit/config/test_precision.py)
os.environ.setdefault("TLNLP_BF16_AUTO", "fp32")

import pytest
import torch

torch.set_num_threads(1)

TINY = dict(hidden_size=32, num_attention_heads=2, intermediate_size=64, num_hidden_layers=2)
ARCHS = ["bert", "roberta", "distilbert", "gpt2", "llama"]


def tiny_config(arch: str, vocab_size: int = 30522, **overrides):
    """A 2-layer, hidden-32 transformers config of the given architecture."""
    from transformers import BertConfig, DistilBertConfig, GPT2Config, LlamaConfig, RobertaConfig

    if arch == "bert":
        cfg = BertConfig(vocab_size=vocab_size, max_position_embeddings=128, **TINY)
    elif arch == "roberta":
        cfg = RobertaConfig(vocab_size=vocab_size, max_position_embeddings=130, pad_token_id=1, **TINY)
    elif arch == "distilbert":
        cfg = DistilBertConfig(vocab_size=vocab_size, dim=32, n_heads=2, hidden_dim=64, n_layers=2,
                               max_position_embeddings=128)
    elif arch == "gpt2":
        cfg = GPT2Config(vocab_size=vocab_size, n_embd=32, n_head=2, n_layer=2, n_positions=128, pad_token_id=0)
    elif arch == "llama":
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, num_attention_heads=2, num_key_value_heads=2,
                          intermediate_size=64, num_hidden_layers=2, max_position_embeddings=128, pad_token_id=0)
    else:
        raise ValueError(arch)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture(params=ARCHS)
def arch(request):
    """Each tiny architecture in turn."""
    return request.param


@pytest.fixture
def tiny_classifier():
    """Factory: ``tiny_classifier(arch, num_labels=2)`` -> seeded AutoModelForSequenceClassification."""
    from transformers import AutoModelForSequenceClassification

    def make(arch: str = "bert", num_labels: int = 2, **overrides):
        torch.manual_seed(0)
        cfg = tiny_config(arch, num_labels=num_labels, **overrides)
        return AutoModelForSequenceClassification.from_config(cfg)

    return make


@pytest.fixture(scope="session")
def bundled_minilm_dir():
    """Folder of the bundled MiniLM (skips when the offline assets are not installed)."""
    from tlnlp.assets import AssetError, bundled_model_path

    try:
        return bundled_model_path("minilm")
    except AssetError as err:  # pragma: no cover - assets are installed by `make test`
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def tokenizer(bundled_minilm_dir):
    """The bundled MiniLM's (BERT uncased) tokenizer; vocabulary 30522, matching tiny_config's default."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bundled_minilm_dir)
