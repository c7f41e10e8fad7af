"""CPU dropout from 16-bit random numbers: the same law as torch's, the same predictions, nothing saved changes."""

import copy

import pytest
import torch
from torch import nn

from tlnlp.models.cpu_dropout import ATTENTION_NAME, CpuDropout, _attention, dropout_scale, use_fast_cpu_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_masks_keep_each_element_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    scale = dropout_scale(torch.Size([1000, 1000]), p, torch.float32)
    kept = scale > 0
    values = scale.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p))
    spread = (p * (1 - p) / kept.numel()) ** 0.5
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * spread
    # the four 16-bit numbers of one 64-bit draw are independent: neighbours are not correlated
    first, second = kept[:, 0::2].float().flatten(), kept[:, 1::2].float().flatten()
    assert abs(torch.corrcoef(torch.stack([first, second]))[0, 1].item()) < 0.01


def test_masks_follow_torchs_seed():
    torch.manual_seed(3)
    first = dropout_scale(torch.Size([7, 9]), 0.3, torch.float32)
    torch.manual_seed(3)
    assert torch.equal(first, dropout_scale(torch.Size([7, 9]), 0.3, torch.float32))
    assert not torch.equal(first, dropout_scale(torch.Size([7, 9]), 0.3, torch.float32))


def test_the_module_drops_in_training_and_passes_through_in_evaluation():
    layer = nn.Dropout(0.25)
    layer.__class__ = CpuDropout
    x = torch.randn(64, 33, requires_grad=True)
    layer.eval()
    assert layer(x) is x or torch.equal(layer(x), x)
    layer.train()
    torch.manual_seed(1)
    out = layer(x)
    torch.manual_seed(1)
    expected_scale = dropout_scale(x.shape, 0.25, x.dtype)
    assert torch.equal(out, x * expected_scale)
    out.sum().backward()
    assert torch.equal(x.grad, expected_scale)  # the backward pass uses the forward's mask


def _tiny_bert(tiny_classifier):
    model = tiny_classifier("bert")
    assert model.config._attn_implementation == "sdpa"  # transformers' default where torch has SDPA
    return model


def test_a_prepared_model_predicts_exactly_as_before_and_saves_the_same_files(tiny_classifier, tmp_path):
    model = _tiny_bert(tiny_classifier)
    reference = copy.deepcopy(model)
    dropout_modules = sum(type(m) is nn.Dropout for m in model.modules())
    assert use_fast_cpu_dropout(model) == dropout_modules + 1  # every dropout module, plus the attention
    assert model.config._attn_implementation == ATTENTION_NAME
    assert use_fast_cpu_dropout(model) == 0  # idempotent: nothing left to change
    ids = torch.randint(1000, 2000, (3, 10))
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[1, 6:] = 0
    model.eval()
    reference.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits,
                           reference(input_ids=ids, attention_mask=mask).logits)
    assert model.state_dict().keys() == reference.state_dict().keys()
    model.save_pretrained(tmp_path)
    assert ATTENTION_NAME not in (tmp_path / "config.json").read_text()


def test_training_steps_run_and_differ_from_evaluation(tiny_classifier):
    model = _tiny_bert(tiny_classifier)
    use_fast_cpu_dropout(model)
    ids = torch.randint(1000, 2000, (4, 12))
    model.train()
    loss = model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        assert not torch.equal(model(input_ids=ids).logits, model.train()(input_ids=ids).logits)


def test_the_attention_is_sdpas_math_with_the_mask(tiny_classifier):
    attention = _tiny_bert(tiny_classifier).bert.encoder.layer[0].attention.self
    attention.train()
    query, key, value = (torch.randn(2, 2, 9, 16, requires_grad=True) for _ in range(3))
    padding = torch.ones(2, 1, 9, 9, dtype=torch.bool)
    padding[1, :, :, 5:] = False
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    # a probability so small that every element is kept (scale 1 + 1e-9): the math path, no dropout
    ours, _ = _attention(attention, query, key, value, padding, dropout=1e-9)
    theirs, _ = sdpa_attention_forward(attention, query, key, value, padding, dropout=0.0)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(ours.sum(), (query, key, value))
    expected = torch.autograd.grad(theirs.sum(), (query, key, value))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.manual_seed(0)
    dropped, _ = _attention(attention, query, key, value, padding, dropout=0.5)
    assert dropped.shape == theirs.shape and not torch.allclose(dropped, theirs)


@pytest.mark.parametrize("arch", ["roberta", "distilbert", "gpt2", "llama"])
def test_other_architectures_keep_their_predictions(tiny_classifier, arch):
    model = tiny_classifier(arch)
    reference = copy.deepcopy(model)
    use_fast_cpu_dropout(model)
    ids = torch.randint(5, 1000, (2, 8))
    for each in (model, reference):
        each.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, reference(input_ids=ids).logits)
    model.train()
    model(input_ids=ids, labels=torch.tensor([0, 1])).loss.backward()


def test_the_trainer_prepares_cpu_training_unless_told_not_to(tmp_path, tiny_classifier, tokenizer):
    from datasets import Dataset
    from transformers import TrainingArguments

    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.training import build_trainer

    rows = Dataset.from_dict({**tokenizer(["good film", "bad"]), "labels": [0, 1]})
    for choice, expected in (("fast", CpuDropout), ("torch", nn.Dropout)):
        args = TrainingArguments(output_dir=str(tmp_path / choice), report_to="none", use_cpu=True)
        args.cpu_dropout = choice
        model = _tiny_bert(tiny_classifier)
        build_trainer(apply_method(model, MethodArgs()), tokenizer, {"train": rows}, args)
        assert type(model.bert.embeddings.dropout) is expected


def test_the_flag_names_its_choices():
    from tlnlp.config import TrainingArgs

    with pytest.raises(ValueError, match="cpu_dropout='quick'.*fast, torch"):
        TrainingArgs(output_dir="unused", cpu_dropout="quick")


def _tiny_sentence_encoder(folder, tokenizer):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoModel

    from tests.conftest import tiny_config

    torch.manual_seed(0)
    AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    body = Transformer(str(folder), max_seq_length=16)
    return SentenceTransformer(modules=[body, Pooling(body.get_embedding_dimension(), pooling_mode="mean")],
                               device="cpu")


@pytest.mark.parametrize("choice", ["fast", "torch"])
def test_setfit_body_training_follows_the_flag(tmp_path, tokenizer, choice):
    from types import SimpleNamespace

    import numpy as np

    from tlnlp.methods import MethodArgs
    from tlnlp.methods.heads.method import FitInputs
    from tlnlp.methods.setfit.method import _train_body

    encoder = _tiny_sentence_encoder(tmp_path / "encoder", tokenizer)
    inputs = FitInputs(texts=["good", "great", "bad", "awful"], labels=np.array([0, 0, 1, 1]),
                       label_names=["positive", "negative"], output_dir=tmp_path / "out", show_progress=False,
                       training=SimpleNamespace(cpu_dropout=choice))
    body = _train_body(encoder, inputs, MethodArgs(method="setfit", setfit_max_steps=2))
    assert body["body_steps"] >= 1
    swapped = any(type(module) is CpuDropout for module in encoder.modules())
    assert swapped == (choice == "fast")


def test_reduced_precision_attention_is_computed_in_float32_as_sdpas_math(tiny_classifier):
    attention = _tiny_bert(tiny_classifier).bert.encoder.layer[0].attention.self
    attention.train()
    torch.manual_seed(0)
    query, key, value = (torch.randn(2, 2, 30, 16).bfloat16() for _ in range(3))
    exact = torch.nn.functional.scaled_dot_product_attention(query.float(), key.float(), value.float())
    ours, _ = _attention(attention, query, key, value, None, dropout=1e-9)
    assert ours.dtype == torch.bfloat16
    # only the output's rounding to bf16 (a softmax in bf16 would be off by about twice as much)
    torch.testing.assert_close(ours.float(), exact.transpose(1, 2), atol=5e-3, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast, _ = _attention(attention, query, key, value, None, dropout=1e-9)
    assert torch.equal(under_autocast, ours)
