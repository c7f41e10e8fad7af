"""ULMFiT's layer-wise parameter groups: one optimizer group per layer group, with its rate scale and thaw order.

:func:`layerwise_param_groups` turns the trainable parameters of any method (full, LoRA, ...) into these groups
when the ULMFiT options ask for discriminative rates, gradual unfreezing or a head warm-up. Layer groups come from
:func:`tlnlp.models.get_layer_groups` (embeddings, one group per transformer block, head), so encoders and
decoders alike are covered, PEFT-wrapped models included.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from tlnlp.methods.base import ParamGroup
from tlnlp.methods.ulmfit.options import UlmfitSettings
from tlnlp.methods.ulmfit.schedules import discriminative_scales
from tlnlp.models.layers import EMBEDDINGS, HEAD, LayerGroup, get_layer_groups

__all__ = ["describe_param_groups", "layerwise_param_groups", "merge_block_groups"]

logger = logging.getLogger(__name__)


def merge_block_groups(groups: list[LayerGroup], blocks_per_group: int) -> list[LayerGroup]:
    """Merge consecutive transformer blocks into coarser layer groups, counting from the top.

    The embeddings and head groups stay as they are; blocks are taken ``blocks_per_group`` at a time from the
    top block down (the lowest merged group may hold fewer), e.g. six blocks by two give ``blocks_0-1``,
    ``blocks_2-3``, ``blocks_4-5``.

    Args:
        groups: Groups from :func:`tlnlp.models.get_layer_groups` (embeddings, blocks, head).
        blocks_per_group: Blocks per merged group (1 returns ``groups`` unchanged).

    Returns:
        The merged groups, input first.
    """
    if blocks_per_group <= 1:
        return list(groups)
    blocks = [g for g in groups if g.name not in (EMBEDDINGS, HEAD)]
    chunks: list[list[LayerGroup]] = []
    for end in range(len(blocks), 0, -blocks_per_group):
        chunks.insert(0, blocks[max(end - blocks_per_group, 0):end])
    merged = []
    for chunk in chunks:
        first, last = chunk[0].name.split("_")[-1], chunk[-1].name.split("_")[-1]
        name = chunk[0].name if len(chunk) == 1 else f"blocks_{first}-{last}"
        merged.append(LayerGroup(name, [n for g in chunk for n in g.param_names]))
    head = [g for g in groups if g.name == HEAD]
    embeddings = [g for g in groups if g.name == EMBEDDINGS]
    return embeddings + merged + head


def _method_overrides(method_groups: list[ParamGroup] | None) -> dict[int, float]:
    """Weight decay per parameter id from a method's own groups; refuse groups with their own rates."""
    decay: dict[int, float] = {}
    for group in method_groups or []:
        if "lr" in group:
            raise ValueError(f"The method's param group {group.get('name')!r} sets its own learning rate; it cannot "
                             "be combined with discriminative rates or gradual unfreezing. Drop "
                             "--discriminative_factor/--gradual_unfreezing/--head_warmup_steps, or the group's lr.")
        if "weight_decay" in group:
            decay.update({id(param): float(group["weight_decay"]) for param in group["params"]})
    return decay


def _split_by_decay(group: ParamGroup, decay: dict[int, float]) -> list[ParamGroup]:
    if not decay:
        return [group]
    by_value: dict[float | None, list[torch.nn.Parameter]] = {}
    for param in group["params"]:
        by_value.setdefault(decay.get(id(param)), []).append(param)
    out = []
    for value, params in by_value.items():
        part = {**group, "params": params}
        if value is not None:
            part["weight_decay"] = value
        out.append(part)
    return out


def layerwise_param_groups(model: torch.nn.Module, settings: UlmfitSettings,
                           method_groups: list[ParamGroup] | None = None) -> list[ParamGroup]:
    """One optimizer param group per layer group of the trainable parameters, with its rate scale and thaw order.

    Each group carries ``"name"`` (the layer group), ``"lr_scale"`` (its discriminative multiplier of
    ``--learning_rate``: ``factor ** -(n - 1 - i)`` for group ``i`` of ``n``, the head getting 1) and
    ``"thaw_order"`` (0 for the top group that trains, 1 for the next one down, ... ; gradual unfreezing
    thaws them in that order). Groups without trainable parameters (e.g. the embeddings under LoRA) are left
    out but keep their place in the depth count.

    Args:
        model: The prepared model (possibly PEFT-wrapped); only parameters with ``requires_grad`` are included.
        settings: The resolved ULMFiT options.
        method_groups: Param groups the method returned, if any (their weight decay is kept).

    Returns:
        The param groups, input first.

    Raises:
        ValueError: No trainable parameters; the head must warm up but has none; a method group sets its own rate.
    """
    decay = _method_overrides(method_groups)
    groups = merge_block_groups(get_layer_groups(model), settings.blocks_per_group)
    scales = discriminative_scales(len(groups), settings.discriminative_factor)
    named = dict(model.named_parameters())
    built: list[ParamGroup] = []
    for group, scale in zip(groups, scales, strict=True):
        params = [named[name] for name in group.param_names if named[name].requires_grad]
        if params:
            built.append({"params": params, "name": group.name, "lr_scale": scale})
    if not built:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to put in layer groups.")
    for order, group in enumerate(reversed(built)):
        group["thaw_order"] = order
    if settings.head_warmup_steps and built[-1]["name"] != HEAD:
        raise ValueError(f"head_warmup_steps={settings.head_warmup_steps} but the model's head has no trainable "
                         "parameters; set --head_warmup_steps 0.")
    if settings.gradual_unfreezing != "off" and len(built) == 1:
        logger.warning("gradual_unfreezing=%s: only one layer group trains (%s); there is nothing to unfreeze.",
                       settings.gradual_unfreezing, built[0]["name"])
    out = [part for group in built for part in _split_by_decay(group, decay)]
    logger.info("Layer groups (input first): %s", describe_param_groups(out))
    return out


def describe_param_groups(param_groups: list[ParamGroup]) -> str:
    """One line describing layer-wise param groups: name, tensors, rate scale, thaw order.

    Args:
        param_groups: Groups from :func:`layerwise_param_groups`.

    Returns:
        E.g. ``"embeddings (5 tensors, lr x0.0029, thaw 7), ..., head (4 tensors, lr x1, thaw 0)"``.
    """
    parts: list[str] = []
    for group in param_groups:
        details: list[Any] = [f"{len(group['params'])} tensors", f"lr x{group.get('lr_scale', 1.0):.3g}"]
        if "thaw_order" in group:
            details.append(f"thaw {group['thaw_order']}")
        parts.append(f"{group['name']} ({', '.join(details)})")
    return ", ".join(parts)
