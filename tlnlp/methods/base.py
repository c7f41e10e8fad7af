"""What a transfer method is: a :class:`Method` with hooks, the :data:`METHODS` registry and ``apply_method``.

A method is one object registered under its ``--method`` name. Its hooks (every one optional; the defaults do
nothing) cover the whole life of a run: validating its options, preparing the model (freeze, wrap), optimizer
parameter groups, Trainer callbacks, the optimizer and scheduler, gradient clipping, logged values, extra
checkpoint state, what it saves at the end, how the card describes it and how a saved run reloads for inference.
The trainer (:mod:`tlnlp.training.trainer`) and the output pipeline call these hooks and never name a method.

Register a method with the :func:`register_method` class decorator (or ``METHODS.register(name, instance)``);
a package outside tlnlp registers through the ``tlnlp.methods`` entry-point group
(:func:`tlnlp.methods.plugins.load_method_plugins`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from transformers import TrainerCallback

from tlnlp.models.layers import count_parameters
from tlnlp.registry import Registry

__all__ = [
    "METHODS",
    "CardParts",
    "Method",
    "MethodResult",
    "ParamGroup",
    "active_methods",
    "apply_method",
    "has_options",
    "log_trainable",
    "register_method",
    "reload_run",
]

logger = logging.getLogger(__name__)

#: An optimizer parameter group: ``"params"`` and ``"name"``, optionally ``"lr"``, ``"lr_scale"`` (multiplies
#: ``--learning_rate``), ``"weight_decay"`` and any key a method's own scheduler reads.
ParamGroup = dict[str, Any]


@dataclass
class CardParts:
    """What a method adds to the model card.

    Attributes:
        description: One paragraph on what trains (None: keep the description found so far).
        params: Parameter facts for the card (counts, and e.g. the adapter's settings).
        sections: Extra card sections, title -> markdown.
        tags: Extra card tags.
    """

    description: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


class Method:
    """A transfer method: its ``--method`` name, its flags and its hooks (every hook optional).

    Hooks that see the run's options get ``args``, the parsed :class:`tlnlp.methods.MethodArgs`. Trainer hooks
    may keep per-run state in ``trainer.method_state[self.name]`` (one method instance serves every run).

    Attributes:
        name: The ``--method`` value.
        options: A dataclass of this method's flags (each field becomes a ``--flag`` and a YAML key of
            ``MethodArgs``; every field needs a default), or None.
        description: The card's paragraph on what trains; ``{head}`` becomes the task's head, e.g.
            "classification head" (the task's :attr:`~tlnlp.tasks.Task.head`).
        trains_with_trainer: Whether the run goes through the Trainer and these hooks.
    """

    name: ClassVar[str] = ""
    options: ClassVar[type | None] = None
    description: ClassVar[str] = ""
    #: False for a method that trains without the Trainer (e.g. a head on sentence embeddings); the recipes run
    #: it through its own ``fit`` (:class:`tlnlp.methods.heads.EmbeddingMethod`) instead of ``apply_method``.
    trains_with_trainer: ClassVar[bool] = True

    def validate(self, args: Any) -> None:
        """Check ``args`` (raise ``ValueError`` naming the flag); called for every registered method's class."""

    def is_active(self, args: Any) -> bool:
        """Whether this method's hooks run: it is the chosen method (options of some methods also work alone)."""
        return args.method == self.name

    def prepare(self, model: torch.nn.Module, args: Any) -> torch.nn.Module:
        """The chosen method only: freeze or wrap ``model`` (e.g. PEFT); returns the model to train."""
        return model

    def param_groups(self, model: torch.nn.Module, args: Any,
                     groups: list[ParamGroup] | None) -> list[ParamGroup] | None:
        """Every active method, the chosen one first: optimizer groups (None: the Trainer's default optimizer)."""
        return groups

    def callbacks(self, model: torch.nn.Module, args: Any) -> list[TrainerCallback]:
        """Trainer callbacks this method needs."""
        return []

    def setup_trainer(self, trainer: Any, args: Any) -> None:
        """Adjust the built Trainer (e.g. pad on the left)."""

    def create_optimizer(self, train_args: Any, args: Any, groups: list[ParamGroup] | None) -> Any | None:
        """The optimizer over ``groups``, or None to leave it to the next method / the generic AdamW."""
        return None

    def create_scheduler(self, trainer: Any, args: Any, optimizer: Any, num_training_steps: int) -> Any | None:
        """The learning-rate scheduler, or None for the Trainer's ``--lr_scheduler_type``."""
        return None

    def before_clip(self, trainer: Any, args: Any) -> None:
        """After backward, before gradient clipping (e.g. zero the gradients of frozen groups)."""

    def learning_rate(self, trainer: Any, args: Any) -> float | None:
        """What the logs call ``learning_rate`` (None: the Trainer's)."""
        return None

    def log_values(self, trainer: Any, args: Any, logs: dict[str, float]) -> None:
        """Add keys to a ``Trainer.log`` call (e.g. ``lr/<group>``)."""

    def checkpoint_save(self, trainer: Any, args: Any, model: Any,
                        folder_of: Callable[[], str]) -> contextlib.AbstractContextManager[Any]:
        """A context around writing a checkpoint; ``folder_of()`` gives its folder once it is written."""
        return contextlib.nullcontext()

    def checkpoint_load(self, trainer: Any, args: Any, model: Any,
                        checkpoint: str | Path) -> contextlib.AbstractContextManager[Any]:
        """A context around loading a checkpoint (a resume, or the best model at the end)."""
        return contextlib.nullcontext()

    def before_save(self, trainer: Any, args: Any, base_model: str) -> None:
        """Every process, before ``trainer.save_model()``; ``base_model`` is what the run started from."""

    def after_save(self, trainer: Any, args: Any, out: Path) -> bool:
        """Main process, after ``save_model()``: write extra files; True when the saved weights are an adapter."""
        return False

    def save_outputs(self, trainer: Any, args: Any, out: Path, datasets: Any) -> dict[str, float]:
        """Main process, after the splits are scored: final extra outputs (may change the model); metrics."""
        return {}

    def describe(self, task: Any = None) -> str:
        """:attr:`description` for ``task`` (a :class:`tlnlp.tasks.Task`; its ``head`` fills ``{head}``)."""
        return self.description.format(head=getattr(task, "head", None) or "task head")

    def card_parts(self, args: Any, out: Path, task: Any, params: dict[str, Any]) -> CardParts:
        """The card's description of this method for ``task``, parameter facts, sections and tags."""
        return CardParts(description=self.describe(task) or None, params=dict(params))

    def reload(self, folder: Path) -> tuple[Any, Any] | None:
        """``(model, tokenizer)`` for inference from a saved run this method wrote; None when it is not one."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


M = TypeVar("M", bound=type[Method])

#: Transfer methods by name (the ``--method`` flag); holds :class:`Method` instances.
METHODS: Registry[Method] = Registry("method", "--method")


def register_method(cls: M) -> M:
    """Class decorator: register an instance of ``cls`` under ``cls.name``.

    Raises:
        TypeError: ``cls`` is not a :class:`Method` subclass with a name, or its options are not a dataclass
            whose fields all have defaults.
        ValueError: The name is taken.
    """
    if not (isinstance(cls, type) and issubclass(cls, Method)) or not cls.name:
        raise TypeError(f"register_method needs a Method subclass with a name; got {cls!r}.")
    METHODS.register(cls.name, cls())
    return cls


def has_options(method: Method, args: Any) -> bool:
    """Whether ``args`` carries every field of ``method.options`` (False for a MethodArgs composed before it)."""
    return method.options is None or all(hasattr(args, f.name) for f in fields(method.options))


def active_methods(args: Any) -> tuple[Method, ...]:
    """The methods whose hooks run for ``args``: the chosen method first, then every other active one.

    Raises:
        tlnlp.registry.RegistryError: Unknown method; the message suggests close names and lists all.
    """
    chosen = METHODS.get(args.method)
    others = [METHODS.get(name) for name in METHODS.names() if name != args.method]
    return (chosen, *(m for m in others if has_options(m, args) and m.is_active(args)))


@dataclass(frozen=True, eq=False)
class MethodResult:
    """What :func:`apply_method` returns; unpacks as ``model, param_groups = apply_method(...)``.

    It also carries the method arguments and the active methods, so that :func:`tlnlp.training.build_trainer`
    (which takes this object) runs every hook the options ask for.

    Attributes:
        model: The prepared model (possibly wrapped, e.g. by PEFT).
        param_groups: Optimizer parameter groups, or None for the Trainer's default optimizer.
        method_args: The run's ``MethodArgs``.
        methods: The methods whose hooks run, the chosen one first (default: :func:`active_methods`).
    """

    model: torch.nn.Module
    param_groups: list[ParamGroup] | None
    method_args: Any
    methods: tuple[Method, ...] = None  # type: ignore[assignment]  # filled in by __post_init__

    def __post_init__(self) -> None:
        if self.methods is None:
            object.__setattr__(self, "methods", active_methods(self.method_args))

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.param_groups))


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
        if not isinstance(group, Mapping) or "params" not in group or "name" not in group:
            raise ValueError(f"Method {method!r} returned param group {index} without 'params' and 'name': "
                             f"{sorted(group) if isinstance(group, Mapping) else type(group).__name__}.")


def apply_method(model: torch.nn.Module, method_args: Any) -> MethodResult:
    """Prepare ``model`` for training with the method named by ``method_args.method``.

    The chosen method prepares the model (:meth:`Method.prepare`); then every active method, the chosen one
    first, may set the optimizer groups (:meth:`Method.param_groups`): e.g. the ULMFiT options regroup the
    trainable parameters per layer group whatever the method.

    Args:
        model: A freshly loaded model (e.g. from :func:`tlnlp.models.load_classifier`).
        method_args: The method name and its options (``MethodArgs``).

    Returns:
        A :class:`MethodResult`: ``(model, param_groups)`` plus the method arguments and active methods.

    Raises:
        tlnlp.registry.RegistryError: Unknown method; the message suggests close names and lists all.
    """
    methods = active_methods(method_args)
    if not methods[0].trains_with_trainer:
        raise ValueError(f"method={method_args.method!r} trains without the Trainer (a head on sentence "
                         "embeddings): run it with recipes/classification.py or the ladder (recipes/compare.py), "
                         "which call its fit.")
    model = methods[0].prepare(model, method_args)
    log_trainable(model, method_args.method)
    groups: list[ParamGroup] | None = None
    for method in methods:
        found = method.param_groups(model, method_args, groups)
        if found is not None and found is not groups:
            _check_param_groups(found, method.name)
        groups = found
    return MethodResult(model, groups, method_args, methods)


def reload_run(folder: str | Path) -> tuple[Any, Any] | None:
    """``(model, tokenizer)`` of a saved run that a method wrote in its own format (e.g. an adapter folder).

    Args:
        folder: A run's output folder (local).

    Returns:
        What the first method that recognises the folder loads (:meth:`Method.reload`), or None when none does
        (a plain transformers model folder).
    """
    for name in METHODS.names():
        loaded = METHODS.get(name).reload(Path(folder))
        if loaded is not None:
            return loaded
    return None
