"""ULMFiT on the bundled models: layer groups and rates for MiniLM (encoder) and SmolLM2 (decoder), a few steps."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset, DatasetDict
from transformers import TrainingArguments

from tlnlp.config import ModelArgs
from tlnlp.methods import MethodArgs, MethodResult, apply_method, build_optimizer
from tlnlp.models import get_layer_groups, load_classifier
from tlnlp.training import build_trainer

LR = 1e-3
pytestmark = pytest.mark.slow


def _args(tmp_path, **kw):
    return TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, learning_rate=LR,
                             per_device_train_batch_size=2, logging_steps=1, save_strategy="no", seed=0, **kw)


def _rates(optimizer) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in optimizer.param_groups}


def _check_rates(tmp_path, model, groups, n_blocks):
    names = [g.name for g in get_layer_groups(model)]
    assert names == ["embeddings", *[f"block_{i}" for i in range(n_blocks)], "head"]
    rates = _rates(build_optimizer(_args(tmp_path), groups))
    for index, name in enumerate(names):  # the transformer preset: 0.95 per layer group
        assert rates[name] == pytest.approx(LR * 0.95 ** (len(names) - 1 - index), rel=1e-12), name


def _train_few_steps(tmp_path, model, tokenizer, method_args, groups, steps):
    texts = ["What is the capital of France ?", "Who wrote Hamlet ?", "How far is the moon ?",
             "When did the war end ?"] * 2
    ds = Dataset.from_dict({**tokenizer(texts), "labels": [0, 1, 2, 1] * 2})
    trainer = build_trainer(MethodResult(model, groups, method_args), tokenizer, DatasetDict(train=ds),
                            _args(tmp_path, max_steps=steps))
    trainer.train()
    return trainer


def test_bundled_minilm_groups_rates_and_unfreezing(tmp_path):
    model, tokenizer = load_classifier(ModelArgs("bundled:minilm"), labels=["a", "b", "c"])
    method_args = MethodArgs(method="ulmfit", unfreeze_every_steps=2)
    model, groups = apply_method(model, method_args)
    _check_rates(tmp_path, model, groups, 6)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    _train_few_steps(tmp_path, model, tokenizer, method_args, groups, steps=3)  # head, then block_5 at step 2
    layer = {g.name: g.param_names for g in get_layer_groups(model)}
    params = dict(model.named_parameters())
    for group in ("embeddings", "block_0", "block_4"):
        assert all(torch.equal(params[n], start[n]) for n in layer[group]), group
    for group in ("block_5", "head"):
        assert any(not torch.equal(params[n], start[n]) for n in layer[group]), group


def test_bundled_smollm2_groups_rates_and_unfreezing(tmp_path):
    from tlnlp.assets import AssetError

    try:
        model, tokenizer = load_classifier(ModelArgs("bundled:smollm2"), labels=["a", "b", "c"])
    except AssetError as err:  # pragma: no cover - assets are installed by `make test`
        pytest.skip(str(err))
    method_args = MethodArgs(method="ulmfit", unfreeze_every_steps=2)
    model, groups = apply_method(model, method_args)
    _check_rates(tmp_path, model, groups, 30)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = _train_few_steps(tmp_path, model, tokenizer, method_args, groups, steps=3)
    layer = {g.name: g.param_names for g in get_layer_groups(model)}
    params = dict(model.named_parameters())
    for group in ("embeddings", "block_0", "block_28"):
        assert all(torch.equal(params[n], start[n]) for n in layer[group]), group
    for group in ("block_29", "head"):
        assert any(not torch.equal(params[n], start[n]) for n in layer[group]), group
    logs = [e for e in trainer.state.log_history if "lr/head" in e]
    assert [e["lr/block_29"] > 0 for e in logs] == [False, False, True]
