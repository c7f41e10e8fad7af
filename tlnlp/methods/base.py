"""The method registry and ``apply_method``: a config string picks how a model is prepared for training.

A method is a callable ``method(model, method_args) -> MethodResult``. It may freeze parameters, wrap the
model (PEFT adapters) and return optimizer parameter groups (dicts with ``"params"``, ``"name"`` and
optionally ``"lr"``/``"weight_decay"``); ``None`` lets the Trainer build its default optimizer over the
trainable parameters.
Register new ones with ``@METHODS.register("name")`` in a module imported by ``tlnlp.methods``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from tlnlp.models.layers import count_parameters
from tlnlp.registry import Registry

if TYPE_CHECKING:
    from tlnlp.config.args import MethodArgs

__all__ = ["METHODS", "MethodFn", "MethodResult", "ParamGroup", "apply_method", "log_trainable"]

logger = logging.getLogger(__name__)

ParamGroup = dict[str, Any]


class MethodResult(NamedTuple):
    """What a method returns; unpacks as ``model, param_groups = apply_method(...)``.

    Attributes:
        model: The prepared model (possibly wrapped, e.g. by PEFT).
        param_groups: Optimizer parameter groups, or None for the Trainer's default optimizer.
    """

    model: torch.nn.Module
    param_groups: list[ParamGroup] | None


MethodFn = Callable[[torch.nn.Module, "MethodArgs"], MethodResult]

#: Transfer methods by name (the ``--method`` flag).
METHODS: Registry[MethodFn] = Registry("method", "--method")


def log_trainable(model: torch.nn.Module, method: str) -> dict[str, int | float]:
    """Log and return the trainable/total parameter counts of ``model``.

    Args:
        model: The prepared model.
        method: Method name, for the log line.

    Returns:
        The result of :func:`tlnlp.models.count_parameters`.
    """
    counts = count_parameters(model)
    logger.info("Method %s: %s of %s parameters trainable (%.2f%%).", method, f"{counts['trainable']:,}",
                f"{counts['total']:,}", counts["trainable_percent"])
    return counts


def _check_param_groups(groups: list[ParamGroup], method: str) -> None:
    for index, group in enumerate(groups):
        if not isinstance(group, dict) or "params" not in group or "name" not in group:
            raise ValueError(f"Method {method!r} returned param group {index} without 'params' and 'name': "
                             f"{sorted(group) if isinstance(group, dict) else type(group).__name__}.")


def apply_method(model: torch.nn.Module, method_args: MethodArgs) -> MethodResult:
    """Prepare ``model`` for training with the method named by ``method_args.method``.

    When the ULMFiT options ask for discriminative rates, gradual unfreezing or a head warm-up (whatever the
    method), the trainable parameters are regrouped per layer group
    (:func:`tlnlp.methods.ulmfit.layerwise_param_groups`).

    Args:
        model: A freshly loaded model (e.g. from :func:`tlnlp.models.load_classifier`).
        method_args: The method name and its options.

    Returns:
        ``MethodResult(model, param_groups)``: the possibly wrapped model and optimizer parameter groups (None
        for the Trainer's default optimizer).

    Raises:
        tlnlp.registry.RegistryError: Unknown method; the message suggests close names and lists all.
    """
    method = METHODS.get(method_args.method)
    model, param_groups = method(model, method_args)
    if param_groups is not None:
        _check_param_groups(param_groups, method_args.method)
    ulmfit_settings = getattr(method_args, "ulmfit_settings", None)
    if ulmfit_settings is not None and ulmfit_settings().layerwise:  # discriminative rates / unfreezing, any method
        from tlnlp.methods.ulmfit import layerwise_param_groups

        param_groups = layerwise_param_groups(model, ulmfit_settings(), param_groups)
    return MethodResult(model, param_groups)
