"""Language modelling: block packing, masking, perplexity and pseudo-perplexity against direct computation."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from tests.conftest import tiny_config
from tlnlp.tasks.language_modeling.blocks import lm_collator, tokenize_for_lm
from tlnlp.tasks.language_modeling.model import choose_lm_objective
from tlnlp.tasks.language_modeling.scoring import language_model_score, perplexity, pseudo_perplexity

TEXTS = ["what is the capital of france ?", "who wrote the play hamlet ?", "how far away is the moon ?"]


@pytest.fixture
def tiny_mlm():
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(tiny_config("bert")).eval()


@pytest.fixture
def tiny_clm():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(tiny_config("gpt2")).eval()


def test_mlm_blocks_concatenate_texts_with_their_special_tokens(tokenizer):
    blocks = tokenize_for_lm(TEXTS, tokenizer, max_seq_length=8, objective="mlm")
    flat = [t for row in blocks["input_ids"] for t in row]
    expected = [t for text in TEXTS for t in tokenizer(text)["input_ids"]]
    assert flat == expected
    assert all(len(row) == 8 for row in blocks["input_ids"][:-1])
    special = [m for row in blocks["special_tokens_mask"] for m in row]
    assert [t for t, m in zip(flat, special, strict=True) if m] == [tokenizer.cls_token_id, tokenizer.sep_token_id] * 3


def test_clm_blocks_end_each_text_with_eos(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.eos_token = "[SEP]"
    blocks = tokenize_for_lm(["a b", "c"], tokenizer, max_seq_length=64, objective="clm")
    ids = blocks["input_ids"][0]
    assert ids.count(tokenizer.eos_token_id) == 2 and ids[-1] == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="objective"):
        tokenize_for_lm(TEXTS, tokenizer, 8, "seq2seq")


def test_mlm_collator_masks_about_15_percent_and_never_special_tokens(tokenizer):
    torch.manual_seed(0)
    blocks = tokenize_for_lm(TEXTS * 40, tokenizer, max_seq_length=32, objective="mlm")
    batch = lm_collator(tokenizer, "mlm")([blocks[i] for i in range(len(blocks))])
    chosen = batch["labels"] != -100
    share = chosen.sum().item() / (batch["attention_mask"].sum().item())
    assert 0.10 < share < 0.20
    specials = torch.tensor([tokenizer.cls_token_id, tokenizer.sep_token_id])
    assert not torch.isin(batch["labels"][chosen], specials).any()


def test_perplexity_equals_exp_of_the_models_own_loss(tiny_clm, tokenizer):
    text = TEXTS[0]
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        loss = tiny_clm(input_ids=ids, labels=ids).loss.item()
    assert perplexity(tiny_clm, tokenizer, [text]) == pytest.approx(math.exp(loss), rel=1e-5)
    # several texts of different lengths, batched with padding: the token-weighted mean over texts
    nll = tokens = 0.0
    for t in TEXTS:
        ids = torch.tensor([tokenizer(t)["input_ids"]])
        with torch.no_grad():
            nll += tiny_clm(input_ids=ids, labels=ids).loss.item() * (ids.shape[1] - 1)
        tokens += ids.shape[1] - 1
    assert perplexity(tiny_clm, tokenizer, TEXTS, batch_size=2) == pytest.approx(math.exp(nll / tokens), rel=1e-5)


def test_pseudo_perplexity_equals_masking_each_token_by_hand(tiny_mlm, tokenizer):
    total, count = 0.0, 0
    for text in TEXTS[:2]:
        ids = tokenizer(text)["input_ids"]
        for pos in range(1, len(ids) - 1):  # every token but [CLS] and [SEP]
            masked = list(ids)
            masked[pos] = tokenizer.mask_token_id
            with torch.no_grad():
                logits = tiny_mlm(input_ids=torch.tensor([masked])).logits[0, pos]
            total += torch.log_softmax(logits, -1)[ids[pos]].item()
            count += 1
    expected = math.exp(-total / count)
    got = pseudo_perplexity(tiny_mlm, tokenizer, TEXTS[:2], batch_size=5)
    assert got == pytest.approx(expected, rel=1e-5)
    assert language_model_score(tiny_mlm, tokenizer, TEXTS[:2], "mlm") == {"pseudo_perplexity": pytest.approx(got)}


def test_objective_follows_the_architecture():
    assert choose_lm_objective(tiny_config("bert")) == "mlm"
    assert choose_lm_objective(tiny_config("roberta")) == "mlm"
    assert choose_lm_objective(tiny_config("distilbert")) == "mlm"
    assert choose_lm_objective(tiny_config("gpt2")) == "clm"
    assert choose_lm_objective(tiny_config("llama")) == "clm"
    assert choose_lm_objective(tiny_config("bert"), "clm") == "clm"
    with pytest.raises(ValueError, match="no masked-LM class"):
        choose_lm_objective(tiny_config("llama"), "mlm")
    with pytest.raises(ValueError, match="lm_objective='t5'"):
        choose_lm_objective(tiny_config("bert"), "t5")


def test_sparse_masked_lm_loss_equals_the_models_own_loss_and_gradients(tiny_mlm, tokenizer):
    from tlnlp.tasks.language_modeling.blocks import SparseMaskedLMLoss

    torch.manual_seed(0)
    blocks = tokenize_for_lm(TEXTS * 6, tokenizer, max_seq_length=16, objective="mlm")
    batch = lm_collator(tokenizer, "mlm")([blocks[i] for i in range(len(blocks))])
    tiny_mlm.train(False)
    dense = tiny_mlm(**batch).loss
    dense.backward()
    dense_grad = tiny_mlm.bert.encoder.layer[0].attention.self.query.weight.grad.clone()
    tiny_mlm.zero_grad()
    with SparseMaskedLMLoss(tiny_mlm):
        out = tiny_mlm(**batch)
        assert out.logits.shape[1] == (batch["labels"] != -100).sum()  # only the masked positions projected
        out.loss.backward()
        # calls without labels (pseudo-perplexity, evaluation) are untouched
        assert tiny_mlm(input_ids=batch["input_ids"]).logits.shape[:2] == batch["input_ids"].shape
    assert out.loss.item() == pytest.approx(dense.item(), rel=1e-5)
    assert torch.allclose(tiny_mlm.bert.encoder.layer[0].attention.self.query.weight.grad, dense_grad, atol=1e-6)
    assert tiny_mlm(**batch).logits.shape[1] == batch["input_ids"].shape[1]  # hooks removed
