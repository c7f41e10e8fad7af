"""An AdamW over a method's explicit parameter groups (the Trainer's defaults for everything the groups leave out)."""

from __future__ import annotations

from typing import Any

import torch

from tlnlp.methods.base import ParamGroup

__all__ = ["build_optimizer", "optimizer_groups"]


def optimizer_groups(train_args: Any, param_groups: list[ParamGroup]) -> list[dict[str, Any]]:
    """Torch param groups from a method's groups: trainable tensors only, decay split as the Trainer does.

    Biases and LayerNorm weights (tensors with fewer than 2 dimensions) get no weight decay, as with the
    Trainer's default optimizer. A group's ``lr_scale`` multiplies ``--learning_rate`` unless it sets ``lr``;
    every other key (``name``, ``thaw_order``...) is kept for schedulers and logs.

    Args:
        train_args: ``TrainingArguments`` (learning rate, weight decay).
        param_groups: The method's groups (``"params"``, ``"name"``, optional ``"lr"``, ``"lr_scale"``,
            ``"weight_decay"``...).

    Returns:
        Groups for a ``torch.optim`` optimizer.
    """
    groups = []
    for group in param_groups:
        params = [p for p in group["params"] if p.requires_grad]
        if not params:
            continue
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        base = {k: v for k, v in group.items() if k != "params"}
        if "lr_scale" in base and "lr" not in base:
            base["lr"] = train_args.learning_rate * base["lr_scale"]
        base.setdefault("lr", train_args.learning_rate)
        wd = base.pop("weight_decay", train_args.weight_decay)
        if decay:
            groups.append({**base, "params": decay, "weight_decay": wd})
        if no_decay:
            groups.append({**base, "params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(train_args: Any, param_groups: list[ParamGroup],
                    optimizer_class: type[torch.optim.AdamW] = torch.optim.AdamW) -> torch.optim.Optimizer:
    """AdamW (or a subclass) over explicit parameter groups, with the run's betas and epsilon.

    Args:
        train_args: ``TrainingArguments``.
        param_groups: The method's groups (see :func:`optimizer_groups`).
        optimizer_class: ``torch.optim.AdamW`` or a subclass (e.g. ULMFiT's ``FrozenAwareAdamW``).

    Returns:
        The optimizer.
    """
    return optimizer_class(optimizer_groups(train_args, param_groups), lr=train_args.learning_rate,
                           betas=(train_args.adam_beta1, train_args.adam_beta2), eps=train_args.adam_epsilon)
