"""The two baseline Trainer methods: full fine-tuning, and a frozen backbone whose head (and pooler) train."""

from __future__ import annotations

from typing import Any

import torch

from tlnlp.methods.base import Method, register_method
from tlnlp.models.layers import HEAD, get_layer_groups, set_requires_grad

__all__ = ["FrozenBackbone", "FullFineTuning"]


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
class FrozenBackbone(Method):
    """``--method frozen_backbone``: freeze the backbone (embeddings and every block); the Trainer trains the head.

    Frozen parameters get ``requires_grad=False``, so the Trainer's optimizer never sees them and they stay
    bit-identical. The head is the ``"head"`` layer group: the task head plus backbone layers after the blocks
    (e.g. BERT's pooler, GPT-2's final LayerNorm). This was ``feature_extraction`` before that name went to
    :class:`tlnlp.methods.feature_extraction.FeatureExtraction` (encode once, fit a head on sentence embeddings).
    """

    name = "frozen_backbone"
    description = ("Frozen backbone: the pretrained backbone is frozen (its weights are unchanged) and the Trainer "
                   "trains only the {head} (with the backbone's pooler, where it has one) on its features.")

    def prepare(self, model: torch.nn.Module, args: Any) -> torch.nn.Module:
        """Freeze every layer group but the head.

        Raises:
            ValueError: The model has no head parameters to train.
        """
        groups = get_layer_groups(model)
        head = next(group for group in groups if group.name == HEAD)
        if not head.param_names:
            raise ValueError(f"frozen_backbone found no head parameters in {type(model).__name__}; nothing "
                             "would train. Load the model with a task head (e.g. load_classifier).")
        for group in groups:
            set_requires_grad(model, group.param_names, group.name == HEAD)
        return model
