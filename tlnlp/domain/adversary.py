"""The pieces of DANN (Ganin et al. 2016): gradient reversal, the domain classifier, the λ schedule and the loss.

The domain classifier reads the representation the model's classification head reads (:class:`HeadInput`): a
forward pre-hook on the head captures its input, so every architecture and every method (a PEFT-wrapped model
included) gives the same features to both heads without a second forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlnlp.domain.args import DOMAIN_LR_MULTIPLIER
from tlnlp.models.layers import unwrap_model

__all__ = [
    "IGNORE_INDEX",
    "SOURCE",
    "TARGET",
    "Adversary",
    "DomainClassifier",
    "GradientReversal",
    "HeadInput",
    "dann_lambda",
    "dann_loss",
    "grad_reverse",
    "head_module_name",
]

#: Domain label of source rows and of target rows.
SOURCE, TARGET = 0, 1
#: Class label of a target row: cross-entropy ignores it, so target rows never reach the classification loss.
IGNORE_INDEX = -100


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-coefficient`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coefficient: float) -> torch.Tensor:  # noqa: D102
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        return -ctx.coefficient * grad, None


def grad_reverse(x: torch.Tensor, coefficient: float = 1.0) -> torch.Tensor:
    """The gradient-reversal layer: ``x`` unchanged forward, its gradient times ``-coefficient`` backward."""
    return _ReverseGradient.apply(x, float(coefficient))


class GradientReversal(nn.Module):
    """:func:`grad_reverse` as a module; set :attr:`coefficient` (λ) as training goes on."""

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = float(coefficient)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``, with its gradient reversed and scaled by :attr:`coefficient` on the way back."""
        return grad_reverse(x, self.coefficient)


class DomainClassifier(nn.Module):
    """A small MLP telling source (class 0) from target (class 1) representations.

    Args:
        input_size: Size of the representation (the model's hidden size).
        hidden_size: Hidden units.
        dropout: Dropout after the hidden layer.
    """

    def __init__(self, input_size: int, hidden_size: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden_size, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Domain logits, ``rows x 2``, from features of any dtype (read in the classifier's own).

        The model's bf16/fp16 autocast ends with its forward, so the captured features may be bf16 while this
        classifier keeps fp32 weights; the gradient flows back through the cast.
        """
        return self.net(features.to(self.net[0].weight.dtype))


def dann_lambda(progress: float, max_lambda: float = 1.0, gamma: float = 10.0) -> float:
    """Ganin et al.'s schedule: ``max_lambda * (2 / (1 + exp(-gamma * p)) - 1)``, p clipped to [0, 1].

    Args:
        progress: Training progress p (optimisation steps done / total steps).
        max_lambda: λ at the end of training (0: no adaptation).
        gamma: Steepness of the ramp.

    Returns:
        λ: 0 at the start, rising towards ``max_lambda``.
    """
    p = min(max(float(progress), 0.0), 1.0)
    return max_lambda * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


def head_module_name(model: nn.Module) -> str:
    """The name of the classification head: the first child of the model outside its backbone that has weights.

    BERT's ``classifier`` (it reads the pooler's output), DistilBERT's ``pre_classifier`` (the [CLS] state),
    RoBERTa's ``classifier`` and the ``score`` of decoder classifiers (both read every position).

    Raises:
        ValueError: The model has no head (e.g. a bare encoder).
    """
    inner = unwrap_model(model)
    backbone = getattr(inner, "base_model", None)
    for name, child in inner.named_children() if backbone is not None and backbone is not inner else ():
        if child is not backbone and any(True for _ in child.parameters()):
            return name
    raise ValueError(f"{type(inner).__name__} has no classification head to read the representation of; load the "
                     "model with a sequence-classification head (tlnlp.models.load_classifier).")


class HeadInput:
    """Captures the input of the model's classification head at every forward pass (a forward pre-hook).

    Register it on the model that trains (after a method wrapped it: a PEFT model's head is its trainable copy).

    Args:
        model: A sequence-classification model, possibly wrapped (PEFT, DDP).
    """

    def __init__(self, model: nn.Module) -> None:
        inner = unwrap_model(model)
        self.name = head_module_name(inner)
        self.last_token = self.name == "score"  # decoder classifiers read the last real token
        self._value: torch.Tensor | None = None
        self._handle = getattr(inner, self.name).register_forward_pre_hook(self._keep, with_kwargs=True)

    def _keep(self, module: nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
        found = [a for a in [*args, *kwargs.values()] if torch.is_tensor(a)]
        self._value = found[0] if found else None

    def pooled(self, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The representation of the last forward pass, one row per input (it is then forgotten).

        A head that reads every position (``rows x tokens x hidden``) is pooled as it pools: the first token,
        or for a decoder classifier the last non-padding token (right padding).

        Raises:
            RuntimeError: No forward pass went through the head since the last call.
        """
        value, self._value = self._value, None
        if value is None:
            raise RuntimeError(f"The classification head {self.name!r} saw no input since the last read.")
        if value.dim() == 2:
            return value
        if not self.last_token:
            return value[:, 0]
        if attention_mask is None:
            return value[:, -1]
        last = attention_mask.long().sum(dim=-1).clamp(min=1) - 1
        return value[torch.arange(value.size(0), device=value.device), last]

    def remove(self) -> None:
        """Remove the hook (the model is as it was)."""
        self._handle.remove()


@dataclass
class Adversary:
    """What the domain-adversarial Trainer adds to a run.

    Attributes:
        head: The domain classifier.
        representation: The captured input of the classification head.
        max_lambda: λ at the end of the ramp (``--domain_loss_weight``).
        gamma: Steepness of the ramp.
        learning_rate: The domain classifier's learning rate (None: :data:`DOMAIN_LR_MULTIPLIER` times the run's).
    """

    head: DomainClassifier
    representation: HeadInput
    max_lambda: float = 1.0
    gamma: float = 10.0
    learning_rate: float | None = None

    def coefficient(self, progress: float) -> float:
        """λ at training progress ``progress``."""
        return dann_lambda(progress, self.max_lambda, self.gamma)

    def rate(self, learning_rate: float) -> float:
        """The domain classifier's learning rate in a run at ``learning_rate``."""
        return self.learning_rate if self.learning_rate is not None else DOMAIN_LR_MULTIPLIER * learning_rate


def dann_loss(logits: torch.Tensor, labels: torch.Tensor, domain_logits: torch.Tensor,
              domains: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Classification loss on the source rows plus the domain loss on every row.

    The gradient reversal happens before ``domain_logits`` (:func:`grad_reverse` on the features): the domain
    classifier learns from the full domain loss, the encoder gets its gradient times ``-λ``.

    Args:
        logits: Class logits, ``rows x classes``.
        labels: Class ids; target rows hold :data:`IGNORE_INDEX`.
        domain_logits: The domain classifier's logits on the reversed features, ``rows x 2``.
        domains: :data:`SOURCE` or :data:`TARGET` per row.

    Returns:
        The loss, and detached ``classification_loss``, ``domain_loss`` and ``domain_accuracy``.

    Raises:
        ValueError: A source row without a class label, or a batch without source rows.
    """
    source = domains == SOURCE
    if not bool(source.any()):
        raise ValueError("A domain-adaptation batch holds no source rows; the collator puts source rows first.")
    if bool((labels[source] == IGNORE_INDEX).any()):
        raise ValueError("A source row has no class label.")
    classification = F.cross_entropy(logits[source].float(), labels[source])
    domain = F.cross_entropy(domain_logits.float(), domains)
    accuracy = (domain_logits.argmax(dim=-1) == domains).float().mean()
    parts = {"classification_loss": classification.detach(), "domain_loss": domain.detach(),
             "domain_accuracy": accuracy.detach()}
    return classification + domain, parts
