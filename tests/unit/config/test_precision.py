"""--bf16 auto: CUDA decides by support, a CPU by a cached measurement; bf16 training keeps weights fp32."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tlnlp.config import TrainingArgs
from tlnlp.config import precision as precision_module
from tlnlp.config.precision import BF16_ENV, choose_bf16, cpu_bf16_speedup


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """The CPU measurement made deterministic: fp32 at 100 GFLOP/s, bf16 at a rate the test sets; calls counted."""
    monkeypatch.delenv(BF16_ENV, raising=False)
    monkeypatch.setenv("TLNLP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = {"bf16": 200.0, "calls": 0}

    def rate(dtype, size=512, min_seconds=0.1):
        state["calls"] += 1
        return state["bf16"] if dtype == torch.bfloat16 else 100.0

    monkeypatch.setattr(precision_module, "_matmul_rate", rate)
    return state


def test_a_cpu_with_fast_bf16_turns_it_on_and_the_measurement_is_cached(measured, tmp_path):
    choice = choose_bf16()
    assert choice.bf16 and "2.00x" in choice.reason
    assert measured["calls"] == 2
    assert cpu_bf16_speedup() == 2.0 and measured["calls"] == 2, "the second call reads the cache"
    cached = json.loads(next((tmp_path / "cache" / "precision").glob("cpu_bf16_*.json")).read_text())
    assert cached["bf16_over_fp32"] == 2.0


def test_a_cpu_with_slow_bf16_stays_fp32_and_says_why(measured):
    measured["bf16"] = 0.1
    choice = choose_bf16()
    assert not choice.bf16 and "0.00x" in choice.reason and "below 1.2x" in choice.reason
    assert not choose_bf16(fp16=True).bf16


def test_cuda_decides_by_its_bf16_support(monkeypatch):
    monkeypatch.delenv(BF16_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Test GPU")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert choose_bf16() == precision_module.PrecisionChoice(True, "CUDA device Test GPU supports bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert not choose_bf16().bf16


def test_the_flag_takes_auto_true_false_and_refuses_the_rest(measured, tmp_path):
    assert TrainingArgs(output_dir=str(tmp_path)).bf16 is True  # auto, on the measured fast CPU
    assert TrainingArgs(output_dir=str(tmp_path), bf16="false").bf16 is False
    assert TrainingArgs(output_dir=str(tmp_path), bf16=False).bf16 is False
    forced = TrainingArgs(output_dir=str(tmp_path), bf16="true")
    assert forced.bf16 is True and forced.use_cpu, "bf16 on a machine without CUDA runs autocast on the CPU"
    with pytest.raises(ValueError, match="bf16='half' is not valid; choose auto, true or false"):
        TrainingArgs(output_dir=str(tmp_path), bf16="half")


def test_bf16_training_keeps_frozen_weights_bit_identical_and_saves_fp32(tmp_path, tiny_classifier, tokenizer):
    import datasets

    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.training import build_trainer

    texts = [f"a {'good' if i % 2 else 'bad'} film number {i}" for i in range(32)]
    rows = datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(32)]})
    tokenized = datasets.DatasetDict({"train": rows.map(lambda b: tokenizer(b["text"]), batched=True,
                                                        remove_columns=["text"]).rename_column("label", "labels")})
    prepared = apply_method(tiny_classifier("bert"), MethodArgs(method="frozen_backbone"))
    frozen = {n: p.detach().clone() for n, p in prepared.model.named_parameters() if not p.requires_grad}
    head = {n: p.detach().clone() for n, p in prepared.model.named_parameters() if p.requires_grad}
    args = TrainingArgs(output_dir=str(tmp_path / "run"), bf16="true", max_steps=4, per_device_train_batch_size=8,
                        learning_rate=1e-2, report_to="none", save_strategy="no", eval_strategy="no")
    assert args.bf16 and args.mixed_precision == "bf16"
    trainer = build_trainer(prepared, tokenizer, tokenized, args)
    trainer.train()
    after = dict(prepared.model.named_parameters())
    assert all(torch.equal(after[n], w) for n, w in frozen.items())
    assert any(not torch.equal(after[n], w) for n, w in head.items())
    assert all(p.dtype == torch.float32 for p in prepared.model.parameters())
    trainer.save_model()
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert {t.dtype for t in saved.values()} == {torch.float32}
