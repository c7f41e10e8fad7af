"""Which transfer methods a multi-task model trains with, and preparing it for one.

``full`` trains the encoder and every head; ``frozen_backbone`` freezes the encoder's embeddings and blocks (its
pooler, where it has one, and the heads train); ``lora`` adds LoRA to the shared encoder (the adapter, the encoder's
pooler and every head train; each task's saved folder holds the adapter merged into the weights). Other methods
(ULMFiT's layer-wise rates, prompt-style adapters, heads fitted on sentence embeddings) are refused with the list.
"""

from __future__ import annotations

import logging
from typing import Any

from tlnlp.methods import METHODS, MethodResult, active_methods, log_trainable
from tlnlp.methods.adapters import wrap_with_adapter
from tlnlp.models import get_layer_groups
from tlnlp.models.layers import HEAD
from tlnlp.multitask.model import MultiTaskClassifier
from tlnlp.multitask.spec import TaskSpecError

__all__ = ["MULTITASK_METHODS", "check_multitask_method", "encoder_tail", "prepare_multitask_method"]

logger = logging.getLogger(__name__)

#: ``--method`` values a multi-task run trains with.
MULTITASK_METHODS = ("full", "frozen_backbone", "lora")


def check_multitask_method(method_args: Any) -> None:
    """Refuse a method (or method option) the multi-task run does not support, before any work.

    Raises:
        TaskSpecError: Naming the method, the supported ones and the fix.
    """
    if method_args.method not in MULTITASK_METHODS:
        raise TaskSpecError(f"method={method_args.method!r} is not supported by the multi-task recipe; choose one "
                            f"of: {', '.join(MULTITASK_METHODS)} (other methods: recipes/classification.py, one "
                            "task at a time).")
    extra = [m.name for m in active_methods(method_args)[1:]]
    if extra:
        raise TaskSpecError(f"method options of {', '.join(extra)} are set (e.g. layer-wise learning rates), which the "
                            "multi-task recipe does not support. Fix: drop those options.")
    if getattr(method_args, "early_stopping_patience", None):
        raise TaskSpecError(f"early_stopping_patience={method_args.early_stopping_patience} is not supported by the "
                            "multi-task recipe yet. Fix: drop it (use --load_best_model_at_end with "
                            "--metric_for_best_model <task>_accuracy to keep the best checkpoint).")


def encoder_tail(model: MultiTaskClassifier) -> list[str]:
    """Names (inside the encoder) of the encoder's parameters after its blocks, which feed only the heads.

    E.g. BERT's pooler; what a single-task classifier counts in its ``head`` layer group.
    """
    classifier = model.standalone(model.task_names[0], encoder=model.encoder)
    head = next(group for group in get_layer_groups(classifier) if group.name == HEAD)
    start = model.prefix + "."
    return [name[len(start):] for name in head.param_names if name.startswith(start)]


def prepare_multitask_method(model: MultiTaskClassifier, method_args: Any) -> MethodResult:
    """Set what trains in ``model`` for ``method_args.method`` (one of :data:`MULTITASK_METHODS`).

    Returns:
        The :class:`~tlnlp.methods.MethodResult` that :func:`tlnlp.training.build_trainer`-style code takes (no
        parameter groups: the Trainer's optimizer over the trainable parameters).

    Raises:
        TaskSpecError: An unsupported method (see :func:`check_multitask_method`).
    """
    check_multitask_method(method_args)
    method = method_args.method
    tail = set(encoder_tail(model))
    for param in model.parameters():
        param.requires_grad_(True)
    if method == "frozen_backbone":
        for name, param in model.encoder.named_parameters():
            param.requires_grad_(name in tail)
    elif method == "lora":
        model.set_encoder(wrap_with_adapter(model.encoder, method_args))
        for name, param in model.encoder.get_base_model().named_parameters():
            if name in tail:
                param.requires_grad_(True)
    log_trainable(model, f"{method} (multi-task)")
    return MethodResult(model, None, method_args, (METHODS.get(method),))
