"""The two baseline transfer methods: full fine-tuning and feature extraction (frozen backbone)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from tlnlp.methods.base import METHODS, MethodResult, log_trainable
from tlnlp.models.layers import HEAD, get_layer_groups, set_requires_grad

if TYPE_CHECKING:
    from tlnlp.config.args import MethodArgs

__all__ = ["feature_extraction", "full"]

logger = logging.getLogger(__name__)


def full(model: torch.nn.Module, method_args: MethodArgs) -> MethodResult:
    """Fine-tune every parameter.

    Args:
        model: The model to train.
        method_args: Unused beyond the method name.

    Returns:
        The model with every parameter trainable, and None (the Trainer's default optimizer).
    """
    for param in model.parameters():
        param.requires_grad_(True)
    log_trainable(model, method_args.method)
    return MethodResult(model, None)


def feature_extraction(model: torch.nn.Module, method_args: MethodArgs) -> MethodResult:
    """Freeze the backbone (embeddings and every block); train only the head.

    Frozen parameters get ``requires_grad=False``, so the Trainer's optimizer never sees them and they stay
    bit-identical. The head is the ``"head"`` layer group: the task head plus backbone layers after the blocks
    (e.g. BERT's pooler, GPT-2's final LayerNorm).

    Args:
        model: The model to train.
        method_args: Unused beyond the method name.

    Returns:
        The model with only the head trainable, and None (the Trainer's default optimizer).

    Raises:
        ValueError: The model has no head parameters to train.
    """
    groups = get_layer_groups(model)
    head = next(group for group in groups if group.name == HEAD)
    if not head.param_names:
        raise ValueError(f"feature_extraction found no head parameters in {type(model).__name__}; nothing "
                         "would train. Load the model with a task head (e.g. load_classifier).")
    for group in groups:
        set_requires_grad(model, group.param_names, group.name == HEAD)
    log_trainable(model, method_args.method)
    return MethodResult(model, None)


METHODS.register("full", full)
METHODS.register("feature_extraction", feature_extraction)
