"""Batches pad to a multiple of 8 only where tensor cores use it: mixed precision on a CUDA device."""

from types import SimpleNamespace

import torch

from tlnlp.training import pad_multiple


def _args(**kw):
    return SimpleNamespace(**{"fp16": False, "bf16": False, "use_cpu": False, **kw})


def test_mixed_precision_on_cuda_pads_to_eight(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pad_multiple(_args(bf16=True)) == 8 and pad_multiple(_args(fp16=True)) == 8
    assert pad_multiple(_args()) is None  # fp32: nothing to gain
    assert pad_multiple(_args(bf16=True, use_cpu=True)) is None  # forced onto the CPU


def test_a_cpu_never_pays_for_padding_tokens(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pad_multiple(_args(bf16=True)) is None and pad_multiple(_args()) is None


def test_the_trainers_collator_follows_it(tmp_path, tiny_classifier, tokenizer):
    from datasets import Dataset
    from transformers import TrainingArguments

    from tlnlp.methods import MethodArgs, apply_method
    from tlnlp.training import build_trainer

    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True, bf16=True)
    rows = Dataset.from_dict({**tokenizer(["good film", "bad"]), "labels": [0, 1]})
    trainer = build_trainer(apply_method(tiny_classifier("bert"), MethodArgs()), tokenizer, {"train": rows}, args)
    assert trainer.data_collator.pad_to_multiple_of is None  # bf16 on the CPU: batches end at their longest row
