"""Fixtures for few-shot tests: a small byte-level BPE tokenizer and tiny causal LMs that use it."""

from __future__ import annotations

import pytest
import torch

_CORPUS = [
    "Classify the sentiment of each text as positive or negative.",
    "Text: a warm and funny film\nSentiment: positive",
    "Text: dull, slow and far too long\nSentiment: negative",
    "Question: What city hosts the Louvre?\nAnswer type: location",
    "Message: WIN a free prize now, reply YES\nSpam: yes",
] * 4


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """A GPT-2-style byte-level BPE tokenizer (vocabulary about 400) trained on a few prompt-like lines."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


@pytest.fixture
def tiny_lm(bpe_tokenizer):
    """Factory: ``tiny_lm(arch)`` -> a seeded 2-layer causal LM (llama or gpt2) over the BPE vocabulary."""
    from transformers import AutoModelForCausalLM

    from tests.conftest import tiny_config

    def make(arch: str = "llama"):
        torch.manual_seed(0)
        cfg = tiny_config(arch, vocab_size=len(bpe_tokenizer), bos_token_id=None, eos_token_id=0)
        return AutoModelForCausalLM.from_config(cfg).eval()

    return make
