"""The domain-adversarial Trainer: the domain classifier's optimizer group, its gradients, its logs."""

from __future__ import annotations

import functools

import datasets
import pytest
import torch
from transformers import TrainerCallback

from tlnlp.config import TrainingArgs
from tlnlp.domain import (
    LOG_KEYS,
    Adversary,
    DomainAdversarialTrainer,
    DomainClassifier,
    DomainMixCollator,
    HeadInput,
    pair_with_target,
    tokenize_texts,
)
from tlnlp.methods import MethodArgs, apply_method
from tlnlp.training import build_trainer


class _Watch(TrainerCallback):
    def __init__(self, head):
        self.head, self.after_steps, self.weights = head, [], []

    def on_step_end(self, args, state, control, **kwargs):
        self.after_steps.append([p.grad for p in self.head.parameters()])
        self.weights.append(self.head.net[0].weight.detach().clone())


def _dann_trainer(tmp_path, model, tokenizer, source_rows, target_rows, callbacks=None, **settings):
    """A domain-adversarial Trainer on ``source_rows`` labelled and ``target_rows`` unlabelled texts; its head."""
    prepared = apply_method(model, MethodArgs(method="full"))
    head = DomainClassifier(32, 8, 0.0)
    adversary = Adversary(head=head, representation=HeadInput(prepared.model))
    source = tokenize_texts([f"good thing {i}" for i in range(source_rows)], tokenizer, 16,
                            labels=[i % 2 for i in range(source_rows)])
    target = tokenize_texts([f"a film scene {i}" for i in range(target_rows)], tokenizer, 16)
    args = TrainingArgs(output_dir=str(tmp_path), per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1,
                        report_to="none", save_strategy="no", eval_strategy="no", **settings)
    trainer = build_trainer(prepared, tokenizer, datasets.DatasetDict({"train": pair_with_target(source, target, 0)}),
                            args, data_collator=DomainMixCollator(tokenizer), callbacks=callbacks,
                            trainer_class=functools.partial(DomainAdversarialTrainer, adversary=adversary))
    return trainer, head


def test_trainer_trains_the_domain_classifier_at_its_own_rate_and_clears_its_gradients(tmp_path, tiny_classifier,
                                                                                       tokenizer):
    watch = _Watch(None)
    trainer, head = _dann_trainer(tmp_path, tiny_classifier("bert"), tokenizer, 8, 5, callbacks=[watch], max_steps=3,
                                  train_sampling_strategy="sequential")
    watch.head = head
    assert isinstance(trainer, DomainAdversarialTrainer)
    trainer.train()
    group = next(g for g in trainer.optimizer.param_groups if g.get("name") == "domain_classifier")
    assert group["initial_lr"] == pytest.approx(1e-2)  # 10 x --learning_rate by default
    assert all(grad is None for grads in watch.after_steps for grad in grads)  # never carried into the next step
    assert len(watch.weights) == 3 and not torch.equal(watch.weights[0], watch.weights[-1])
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logs) == 3 and all(set(LOG_KEYS) <= set(e) for e in logs)
    assert logs[0]["dann_lambda"] == 0.0 and logs[-1]["dann_lambda"] > logs[1]["dann_lambda"] > 0


def test_trainer_trains_under_bf16_autocast(tmp_path, tiny_classifier, tokenizer):
    """Autocast ends with the model's forward: the fp32 domain classifier still reads the bf16 features."""
    trainer, head = _dann_trainer(tmp_path, tiny_classifier("bert"), tokenizer, 4, 4, max_steps=2, bf16="true",
                                  use_cpu=True)
    assert trainer.args.bf16 is True
    before = head.net[0].weight.detach().clone()
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    assert len(logs) == 2 and all(torch.isfinite(torch.tensor(e["domain_loss"])) for e in logs)
    assert head.net[0].weight.dtype == torch.float32 and not torch.equal(before, head.net[0].weight)
