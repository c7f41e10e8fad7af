"""Gradient reversal, the λ schedule, DANN's loss and the captured representation the classification head reads."""

from __future__ import annotations

import math

import pytest
import torch

from tlnlp.domain import (
    IGNORE_INDEX,
    SOURCE,
    TARGET,
    DomainClassifier,
    GradientReversal,
    HeadInput,
    dann_lambda,
    dann_loss,
    grad_reverse,
    head_module_name,
)


@pytest.mark.parametrize("coefficient", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_identity_forward_and_flips_and_scales_the_gradient(coefficient):
    x = torch.tensor([[1.0, -2.0, 3.0]], requires_grad=True)
    y = grad_reverse(x, coefficient)
    assert torch.equal(y, x)
    (y * torch.tensor([[2.0, 5.0, -1.0]])).sum().backward()
    assert torch.allclose(x.grad, -coefficient * torch.tensor([[2.0, 5.0, -1.0]]))


def test_gradient_reversal_module_reads_its_coefficient_at_each_call():
    layer = GradientReversal(0.5)
    x = torch.ones(2, 2, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -0.5))
    layer.coefficient = 2.0
    x.grad = None
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2, 2), -2.0))


def test_lambda_schedule_values():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.1) == pytest.approx(2 / (1 + math.exp(-1.0)) - 1)  # 0.4621
    assert dann_lambda(0.1) == pytest.approx(0.462117, abs=1e-6)
    assert dann_lambda(0.5) == pytest.approx(0.986614, abs=1e-6)
    assert dann_lambda(1.0) == pytest.approx(0.999909, abs=1e-6)
    assert dann_lambda(0.5, max_lambda=0.1) == pytest.approx(0.0986614, abs=1e-7)
    assert dann_lambda(0.5, gamma=1.0) == pytest.approx(2 / (1 + math.exp(-0.5)) - 1)
    assert dann_lambda(0.7, max_lambda=0.0) == 0.0  # the source-only baseline
    assert dann_lambda(-1.0) == 0.0 and dann_lambda(3.0) == dann_lambda(1.0)  # progress is clipped
    values = [dann_lambda(p / 10) for p in range(11)]
    assert values == sorted(values) and len(set(values)) == 11


def test_dann_loss_takes_class_labels_from_source_rows_only():
    torch.manual_seed(0)
    logits = torch.randn(4, 2, requires_grad=True)
    labels = torch.tensor([1, 0, IGNORE_INDEX, IGNORE_INDEX])
    domains = torch.tensor([SOURCE, SOURCE, TARGET, TARGET])
    domain_logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    loss, parts = dann_loss(logits, labels, domain_logits, domains)
    expected_cls = torch.nn.functional.cross_entropy(logits[:2], labels[:2])
    expected_dom = torch.nn.functional.cross_entropy(domain_logits, domains)
    assert parts["classification_loss"] == pytest.approx(float(expected_cls.detach()))
    assert parts["domain_loss"] == pytest.approx(float(expected_dom))
    assert parts["domain_accuracy"] == pytest.approx(0.5)  # rows 0 and 2 right, 1 and 3 wrong
    assert float(loss) == pytest.approx(float(expected_cls + expected_dom))
    loss.backward()
    assert torch.count_nonzero(logits.grad[:2]) == 4 and torch.count_nonzero(logits.grad[2:]) == 0
    with pytest.raises(ValueError, match="source row has no class label"):
        dann_loss(logits, torch.tensor([1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]), domain_logits, domains)


def _encoder_grads(coefficient: float, domain_term: bool = True) -> torch.Tensor:
    torch.manual_seed(0)
    encoder, classifier, head = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2), DomainClassifier(4, 8, 0.0)
    x = torch.randn(6, 3)
    features = encoder(x)
    labels = torch.tensor([0, 1, 1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX])
    domains = torch.tensor([SOURCE] * 3 + [TARGET] * 3)
    loss, parts = dann_loss(classifier(features), labels, head(grad_reverse(features, coefficient)), domains)
    (loss if domain_term else torch.nn.functional.cross_entropy(classifier(features)[:3], labels[:3])).backward()
    return encoder.weight.grad.clone(), head


def test_the_encoder_gets_the_domain_gradient_reversed_and_scaled_by_lambda():
    only_classification, _ = _encoder_grads(0.0, domain_term=False)
    at_zero, head = _encoder_grads(0.0)
    assert torch.allclose(at_zero, only_classification)  # λ = 0: the encoder never sees the domain loss
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in head.parameters())  # it still learns
    at_one, _ = _encoder_grads(1.0)
    at_two, _ = _encoder_grads(2.0)
    domain_part = at_one - only_classification
    assert torch.count_nonzero(domain_part) > 0
    assert torch.allclose(at_two - only_classification, 2 * domain_part, atol=1e-6)  # linear in λ


def test_domain_classifier_shape():
    head = DomainClassifier(32, hidden_size=16, dropout=0.0)
    assert head(torch.randn(5, 32)).shape == (5, 2)
    assert sum(p.numel() for p in head.parameters()) == 32 * 16 + 16 + 16 * 2 + 2


def test_head_input_is_the_pooled_output_the_bert_classifier_reads(tiny_classifier):
    model = tiny_classifier("bert").eval()
    captured = HeadInput(model)
    assert captured.name == "classifier" and head_module_name(model) == "classifier"
    ids = torch.tensor([[101, 2023, 2003, 102], [101, 2307, 102, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
        pooled = captured.pooled(mask)
        expected = model.bert(input_ids=ids, attention_mask=mask).pooler_output
    assert torch.allclose(pooled, expected, atol=1e-6)
    with pytest.raises(RuntimeError, match="saw no input"):
        captured.pooled(mask)  # read once, then forgotten
    assert torch.allclose(model.classifier(pooled), logits, atol=1e-6)
    captured.pooled(mask)
    captured.remove()
    model(input_ids=ids, attention_mask=mask)
    with pytest.raises(RuntimeError):
        captured.pooled(mask)


def test_head_input_pools_like_the_head_for_other_architectures(tiny_classifier):
    ids = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0]])
    mask = (ids != 0).long()
    distil = tiny_classifier("distilbert").eval()
    captured = HeadInput(distil)
    assert captured.name == "pre_classifier"
    with torch.no_grad():
        distil(input_ids=ids, attention_mask=mask)
        hidden = distil.distilbert(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(captured.pooled(mask), hidden[:, 0], atol=1e-6)
    gpt2 = tiny_classifier("gpt2").eval()
    captured = HeadInput(gpt2)
    assert captured.name == "score" and captured.last_token
    with torch.no_grad():
        gpt2(input_ids=ids, attention_mask=mask)
        hidden = gpt2.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
    pooled = captured.pooled(mask)
    assert torch.allclose(pooled[0], hidden[0, 3], atol=1e-6) and torch.allclose(pooled[1], hidden[1, 1], atol=1e-6)


def test_head_input_finds_the_trainable_head_of_a_lora_model(tiny_classifier):
    from tlnlp.methods import MethodArgs, apply_method

    model = tiny_classifier("bert")
    prepared = apply_method(model, MethodArgs(method="lora", lora_r=2))
    captured = HeadInput(prepared.model)
    ids = torch.tensor([[101, 2023, 102]])
    prepared.model(input_ids=ids).logits.sum().backward()
    assert captured.pooled().shape == (1, 32)


def test_a_bare_encoder_has_no_head():
    from transformers import AutoModel

    from tests.conftest import tiny_config

    with pytest.raises(ValueError, match="no classification head"):
        head_module_name(AutoModel.from_config(tiny_config("bert")))
