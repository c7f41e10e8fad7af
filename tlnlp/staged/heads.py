"""Where a stage starts: the previous stage's model, with its head kept, reordered or replaced by a new one.

The encoder always carries over. The classification head carries over when the stage's labels are the ones the
head was trained for (in another order: its rows are reordered by label name); otherwise, or when the stage asks
for ``new_head``, the head is initialised afresh, exactly as a checkpoint without a head gets one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig

from tlnlp.models import is_adapter_dir, load_classifier, resolve_model_path
from tlnlp.models.loading import hub_kwargs
from tlnlp.staged.spec import StageSpecError

__all__ = ["HEAD_KEPT", "HEAD_NEW", "HEAD_REORDERED", "checkpoint_labels", "head_plan", "load_stage_model",
           "reorder_head", "reset_head", "stage_model_path"]

logger = logging.getLogger(__name__)

HEAD_KEPT, HEAD_REORDERED, HEAD_NEW = "kept", "reordered", "new"


def checkpoint_labels(config: Any) -> list[str] | None:
    """The class names a checkpoint's trained classification head predicts, or None when it has none.

    A config without a ``...ForSequenceClassification`` architecture, or with the generic ``LABEL_0, LABEL_1...``
    names of an untrained head, has no head worth keeping.
    """
    architectures = getattr(config, "architectures", None) or []
    if not any("ForSequenceClassification" in arch for arch in architectures):
        return None
    labels = [str(config.id2label[i]) for i in sorted(config.id2label)]
    if all(name == f"LABEL_{i}" for i, name in enumerate(labels)):
        return None
    return labels


def head_plan(previous: list[str] | None, labels: list[str], new_head: bool = False) -> str:
    """``kept`` (same labels, same order), ``reordered`` (same labels, other order) or ``new``."""
    if new_head or previous is None or sorted(previous) != sorted(labels) or len(set(labels)) != len(labels):
        return HEAD_NEW
    return HEAD_KEPT if list(previous) == list(labels) else HEAD_REORDERED


def stage_model_path(folder: str | Path) -> str:
    """The full model a run folder hands to the next stage: the folder itself, or an adapter run's ``merged/``.

    Raises:
        StageSpecError: An adapter folder without a merged model.
    """
    path = Path(folder)
    if not is_adapter_dir(path):
        return str(folder)
    if (path / "merged" / "config.json").is_file():
        return str(path / "merged")
    raise StageSpecError(f"{folder} holds an adapter and no merged model; a stage starts from a full model. Rerun "
                         "that run with --merge_adapter (its merged/ folder is then used), or start from a full "
                         "model folder.")


def _head_parameters(model: torch.nn.Module) -> list[str]:
    prefix = model.base_model_prefix + "."
    return [name for name in model.state_dict() if not name.startswith(prefix)]


def reset_head(model: torch.nn.Module) -> list[str]:
    """Give ``model`` a freshly initialised head (every weight outside its backbone), seeded by the global RNG.

    transformers skips weights loaded from a checkpoint when it initialises, so the head comes from a model built
    from the same config (initialised as a new head would be) and is copied in.

    Returns:
        The names of the re-initialised weights.
    """
    names = _head_parameters(model)
    fresh = type(model)(model.config).state_dict()
    state = model.state_dict()
    with torch.no_grad():
        for name in names:
            state[name].copy_(fresh[name])
    return names


def reorder_head(model: torch.nn.Module, previous: list[str], labels: list[str]) -> None:
    """Reorder the output rows of the head's last linear layer from ``previous``'s order to ``labels``' order."""
    backbone = model.base_model_prefix
    last = None
    for name, module in model.named_modules():
        if not name.startswith(backbone) and isinstance(module, torch.nn.Linear) and module.out_features == len(
                labels):
            last = module
    if last is None:  # pragma: no cover - every transformers classifier ends in such a layer
        logger.warning("No output layer with %d rows found outside the backbone; using a new head.", len(labels))
        reset_head(model)
        return
    order = torch.tensor([previous.index(name) for name in labels])
    with torch.no_grad():
        last.weight.copy_(last.weight[order].clone())
        if last.bias is not None:
            last.bias.copy_(last.bias[order].clone())


def _set_labels(model: torch.nn.Module, labels: list[str]) -> None:
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}


def load_stage_model(model_args: Any, labels: list[str], multi_label: bool = False,
                     new_head: bool = False) -> tuple[Any, Any, str]:
    """Load the model a stage starts from, with the head its labels call for.

    Args:
        model_args: ``ModelArgs`` naming the start: the chain's first model, a run folder or the previous stage.
        labels: The stage's class names, in label-id order.
        multi_label: Whether the stage's rows may carry several labels.
        new_head: Replace the head even when the labels are unchanged.

    Returns:
        ``(model, tokenizer, head)`` where ``head`` is ``kept``, ``reordered`` or ``new``.
    """
    path = resolve_model_path(model_args.model_name_or_path, revision=model_args.model_revision,
                              cache_dir=model_args.cache_dir, token=model_args.token)
    previous = checkpoint_labels(AutoConfig.from_pretrained(path, **hub_kwargs(model_args)))
    head = head_plan(previous, labels, new_head)
    # a head of the same size loads as it is (no warning that its outputs change meaning: they are set below)
    same_size = previous is not None and len(previous) == len(labels) and head != HEAD_KEPT
    model, tokenizer = load_classifier(model_args, labels=list(previous) if same_size else labels,
                                       multi_label=multi_label)
    if head == HEAD_REORDERED:
        reorder_head(model, list(previous or []), labels)
    elif head == HEAD_NEW:
        reset_head(model)
    _set_labels(model, labels)
    logger.info("Head: %s (%s -> %s)", head, previous or "no trained head", labels)
    return model, tokenizer, head
