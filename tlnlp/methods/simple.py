"""The two baseline transfer methods: full fine-tuning and feature extraction (frozen backbone)."""

from __future__ import annotations

from typing import Any

import torch

from tlnlp.methods.base import Method, register_method
from tlnlp.models.layers import HEAD, get_layer_groups, set_requires_grad

__all__ = ["FeatureExtraction", "FullFineTuning"]


@register_method
class FullFineTuning(Method):
    """``--method full``: fine-tune every parameter with the Trainer's default optimizer."""

    name = "full"
    description = "Full fine-tuning: every weight of the pretrained backbone and the new {head} is trained."

    def prepare(self, model: torch.nn.Module, args: Any) -> torch.nn.Module:
        """Make every parameter trainable."""
        for param in model.parameters():
            param.requires_grad_(True)
        return model


@register_method
class FeatureExtraction(Method):
    """``--method feature_extraction``: freeze the backbone (embeddings and every block); train only the head.

    Frozen parameters get ``requires_grad=False``, so the Trainer's optimizer never sees them and they stay
    bit-identical. The head is the ``"head"`` layer group: the task head plus backbone layers after the blocks
    (e.g. BERT's pooler, GPT-2's final LayerNorm).
    """

    name = "feature_extraction"
    description = ("Feature extraction: the pretrained backbone is frozen (its weights are unchanged) and only the "
                   "{head} is trained on its features.")

    def prepare(self, model: torch.nn.Module, args: Any) -> torch.nn.Module:
        """Freeze every layer group but the head.

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
        return model
