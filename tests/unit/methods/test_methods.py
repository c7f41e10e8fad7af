"""Methods: the registry, full fine-tuning and feature extraction on tiny models.

Parameters that must change change; frozen ones stay bit-identical.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tlnlp.methods import METHODS, MethodArgs, MethodResult, apply_method
from tlnlp.models import count_parameters, get_layer_groups
from tlnlp.registry import RegistryError


def _toy_batch(vocab_size: int = 30522, n: int = 8, length: int = 6) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, vocab_size, (n, length), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            "labels": torch.arange(n) % 2}


def _train(model: torch.nn.Module, steps: int = 3) -> None:
    """A few AdamW steps over the trainable parameters, as the Trainer's default optimizer does."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.01)
    batch = _toy_batch()
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def test_builtin_methods_are_registered():
    assert {"full", "feature_extraction", "setfit", "frozen_backbone"} <= set(METHODS.names())


def test_unknown_method_suggests_close_names():
    with pytest.raises(RegistryError, match="Did you mean 'full'") as info:
        apply_method(torch.nn.Linear(2, 2), SimpleNamespace(method="ful"))
    assert "feature_extraction" in str(info.value)
    with pytest.raises(ValueError, match="Did you mean 'full'"):
        MethodArgs(method="ful")


def test_method_flag_is_validated_by_the_parser():
    from tlnlp.config import ConfigError, parse_args

    with pytest.raises(ConfigError, match="Did you mean 'full'"):
        parse_args(MethodArgs, args=["--method", "ful"])


def test_full_trains_every_parameter(arch, tiny_classifier):
    model = tiny_classifier(arch)
    model.requires_grad_(False)  # "full" must switch everything back on
    result = apply_method(model, MethodArgs(method="full"))
    assert isinstance(result, MethodResult) and result.param_groups is None
    model, groups = result
    before = _snapshot(model)
    _train(model)
    unchanged = [name for name, param in model.named_parameters() if torch.equal(param, before[name])]
    assert unchanged == []


def test_frozen_backbone_freezes_all_but_the_head(arch, tiny_classifier):
    model, param_groups = apply_method(tiny_classifier(arch), MethodArgs(method="frozen_backbone"))
    assert param_groups is None
    head = get_layer_groups(model)[-1]
    assert count_parameters(model)["trainable"] == head.num_parameters(model)
    before = _snapshot(model)
    _train(model)
    for name, param in model.named_parameters():
        if name in head.param_names:
            assert not torch.equal(param, before[name]), f"head parameter {name} did not change"
        else:
            assert torch.equal(param, before[name]), f"frozen parameter {name} changed"


def test_frozen_backbone_under_the_trainer(tiny_classifier, tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    model, param_groups = apply_method(tiny_classifier("bert"), MethodArgs(method="frozen_backbone"))
    batch = _toy_batch(n=8)
    data = Dataset.from_dict({key: value.tolist() for key, value in batch.items()})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4,
                             learning_rate=1e-2, weight_decay=0.1, report_to=[], save_strategy="no",
                             logging_strategy="no", use_cpu=True, disable_tqdm=True)
    before = _snapshot(model)
    Trainer(model=model, args=args, train_dataset=data).train()
    head = set(get_layer_groups(model)[-1].param_names)
    changed = {name for name, param in model.named_parameters() if not torch.equal(param, before[name])}
    assert changed == head


def test_frozen_backbone_needs_a_head():
    from transformers import AutoModel

    from tests.conftest import tiny_config

    with pytest.raises(ValueError, match="no head parameters"):
        apply_method(AutoModel.from_config(tiny_config("distilbert")),
                     MethodArgs(method="frozen_backbone"))
