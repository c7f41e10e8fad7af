"""``MethodArgs``: ``--method``, ``--early_stopping_patience`` and the flags of every registered method's options.

The class is composed from the registered methods (:func:`method_args_class`): each method's ``options``
dataclass contributes its fields, so every flag shows in ``--help`` and is a YAML key, and a method brings its
flags along with it. :data:`MethodArgs` is composed once the built-in methods and the installed plugins are
registered; call :func:`method_args_class` again after registering a method with options later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tlnlp.methods.base import METHODS, Method, has_options
from tlnlp.registry import RegistryError

__all__ = ["MethodArgs", "MethodArgsBase", "method_args_class"]


@dataclass
class MethodArgsBase:
    """The transfer strategy: which parameters train, and how (the fields every ``MethodArgs`` has)."""

    method: str = field(
        default="full",
        metadata={"help": "Transfer method: full (fine-tune everything), feature_extraction (encode once with "
                          "the frozen sentence encoder, fit a head on the embeddings), setfit (contrastive "
                          "sentence-transformer fine-tuning, then a head), frozen_backbone (frozen backbone, the "
                          "Trainer trains pooler and head), ulmfit, or an adapter (lora, dora, adalora, ia3, "
                          "prompt_tuning, prefix_tuning, p_tuning, loha, lokr); installed plugins add their own."},
    )
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after N evaluations without improvement of metric_for_best_model "
                                        "(needs eval_strategy and load_best_model_at_end)."})

    def __post_init__(self) -> None:
        try:
            METHODS.get(self.method)
        except RegistryError as err:
            raise ValueError(f"method={self.method!r}: {err}") from None
        patience = self.early_stopping_patience
        if patience is not None and patience <= 0:
            raise ValueError(f"early_stopping_patience={patience!r} must be a positive number.")
        for method in _validators(self):
            method.validate(self)


def _validators(args: Any) -> list[Method]:
    """One registered method per class whose options ``args`` carries (instances of a class share a check)."""
    seen: dict[type, Method] = {}
    for name in METHODS.names():
        method = METHODS.get(name)
        if has_options(method, args):
            seen.setdefault(type(method), method)
    return list(seen.values())


def _check_options(method: Method) -> None:
    """Refuse options that cannot become flags: not a dataclass, or a field without a default."""
    if not dataclasses.is_dataclass(method.options):
        raise TypeError(f"Method {method.name!r}: options={method.options!r} is not a dataclass.")
    missing = [f.name for f in dataclasses.fields(method.options)
               if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise TypeError(f"Method {method.name!r}: option fields {missing} need a default (every flag is optional).")


def _option_classes() -> list[type]:
    """Each registered method's options class once (by method name); clashing field names are refused."""
    classes: list[type] = []
    owners: dict[str, str] = {f.name: "MethodArgs" for f in dataclasses.fields(MethodArgsBase)}
    for name in METHODS.names():
        method = METHODS.get(name)
        if method.options is None or method.options in classes:
            continue
        _check_options(method)
        for option in dataclasses.fields(method.options):
            if option.name in owners:
                raise TypeError(f"Method {method.name!r}: option {option.name!r} is already a flag of "
                                f"{owners[option.name]}; rename it.")
            owners[option.name] = f"method {method.name!r}"
        classes.append(method.options)
    return classes


_COMPOSED: dict[tuple[type, ...], type] = {}


def method_args_class() -> type:
    """The ``MethodArgs`` dataclass for the methods registered now (composed once per set of options classes).

    Its fields: ``method``, ``early_stopping_patience``, then each options class's fields (methods by
    name); the options classes' methods (e.g. ``ulmfit_settings()``) are inherited. ``__post_init__`` checks the
    method name and calls ``validate`` of every registered method (once per method class).

    Returns:
        The dataclass.

    Raises:
        TypeError: Options that are not a dataclass, lack defaults or reuse another flag's name.
    """
    options = tuple(_option_classes())
    if options not in _COMPOSED:
        doc = ("The transfer strategy: ``--method`` and ``--early_stopping_patience``, plus the options of every "
               f"registered method ({', '.join(o.__name__ for o in options) or 'none'}); each field is a flag and "
               "a YAML key.")
        _COMPOSED[options] = dataclasses.make_dataclass(
            "MethodArgs", [], bases=(*reversed(options), MethodArgsBase),
            namespace={"__module__": __name__, "__doc__": doc, "__post_init__": MethodArgsBase.__post_init__})
    return _COMPOSED[options]


#: The ``MethodArgs`` of the built-in methods and the installed plugins (see :func:`method_args_class`).
MethodArgs = method_args_class()
