"""The search space: which settings a search varies and over what range; data read from YAML, never code.

A space file maps each setting to its range::

    learning_rate: {type: float, low: 1.0e-5, high: 5.0e-4, log: true}
    num_train_epochs: {type: int, low: 2, high: 8}
    lora_r: {type: categorical, choices: [4, 8, 16]}

A name is a ``TrainingArguments`` flag (set on the Trainer's arguments for each trial), a method option (the
method is applied again with it for each trial) or, in a recipe that offers them (:class:`RecipeOptions`), an
option of the recipe's own dataclass (e.g. domain adaptation's ``domain_loss_weight``: the recipe builds each
trial's parts with it). Without a file the search uses :func:`default_space`.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tlnlp.errors import UserError

__all__ = ["KINDS", "HpSearchError", "Param", "RecipeOptions", "SearchSpace", "build_space", "default_space",
           "load_space", "space_summary"]

#: Kinds of range a setting may have.
KINDS = ("float", "int", "categorical")
_SPEC_KEYS = ("type", "low", "high", "log", "step", "choices")
#: Settings a search may not vary: what the run is, where it writes, which stages run, and the objective itself.
FIXED = frozenset({"method", "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "do_train", "do_eval",
                   "do_predict", "push_to_hub", "hub_model_id", "hub_token", "report_to", "metric_for_best_model",
                   "greater_is_better"})

_COMMON: dict[str, dict[str, Any]] = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 3e-4, "log": True},
    "num_train_epochs": {"type": "int", "low": 2, "high": 8},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_steps": {"type": "float", "low": 0.0, "high": 0.2},  # below 1: a share of the training steps
}
_LOW_RANK = {"learning_rate": {"type": "float", "low": 1e-4, "high": 5e-3, "log": True},
             "lora_r": {"type": "categorical", "choices": [4, 8, 16, 32]},
             "lora_dropout": {"type": "float", "low": 0.0, "high": 0.2}}
_PROMPT = {"learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
           "num_virtual_tokens": {"type": "categorical", "choices": [10, 20, 40]}}
#: The built-in space of each method: the common settings, with these ranges changed or added.
METHOD_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {},
    "frozen_backbone": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    "ulmfit": {"discriminative_factor": {"type": "categorical", "choices": [1.5, 2.0, 2.6]}},
    **{name: _LOW_RANK for name in ("lora", "dora", "loha", "lokr")},
    "adalora": {"learning_rate": _LOW_RANK["learning_rate"],
                "adalora_target_r": {"type": "categorical", "choices": [4, 8, 12]}},
    "ia3": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    **{name: _PROMPT for name in ("prompt_tuning", "prefix_tuning", "p_tuning")},
}


class HpSearchError(UserError, ValueError):
    """A search that cannot run as asked: a bad space, no validation split, an objective the run does not report."""


@dataclass(frozen=True)
class RecipeOptions:
    """A recipe's own option dataclass, some of whose fields a search may vary (besides the flags and method options).

    Attributes:
        args: The run's instance (e.g. ``DomainArgs``); the best values are set on it.
        searchable: The fields a trial may vary; the others (which e.g. pick the data every trial shares) are fixed.
        ranges: Ranges added to the method's built-in space (``name -> {type, low, high...}``).
    """

    args: Any
    searchable: tuple[str, ...]
    ranges: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The run's values of the searchable fields."""
        return {name: getattr(self.args, name) for name in self.searchable}


@dataclass(frozen=True)
class Param:
    """One searched setting.

    Attributes:
        name: The flag, e.g. ``learning_rate`` or ``lora_r``.
        kind: ``float``, ``int`` or ``categorical``.
        target: ``training`` (a TrainingArguments flag), ``method`` (a method option) or ``options`` (an option of
            the recipe's own dataclass, see :class:`RecipeOptions`).
        low: Lower bound (float, int).
        high: Upper bound, included (float, int).
        log: Sample on a log scale (float, int).
        step: Grid step (float, int), or None.
        choices: The values of a categorical setting.
    """

    name: str
    kind: str
    target: str = "training"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """This setting's value for an optuna trial (the same value each time the trial asks)."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def ray_domain(self) -> Any:
        """This setting as a Ray Tune search domain."""
        from ray import tune  # deferred: Ray is optional (the `ray` extra) and heavy

        if self.kind == "categorical":
            return tune.choice(list(self.choices))
        if self.kind == "int":
            if self.step:
                return tune.qrandint(int(self.low), int(self.high), int(self.step))
            return (tune.lograndint if self.log else tune.randint)(int(self.low), int(self.high) + 1)
        if self.step:
            return tune.quniform(self.low, self.high, self.step)
        return (tune.loguniform if self.log else tune.uniform)(self.low, self.high)

    def describe(self) -> str:
        """The range in words, e.g. ``float in [1e-05, 0.0003], log``."""
        if self.kind == "categorical":
            return f"one of {list(self.choices)}"
        return f"{self.kind} in [{self.low:g}, {self.high:g}]" + (", log" if self.log else "")


@dataclass(frozen=True)
class SearchSpace:
    """The settings a search varies (:class:`Param` each) and where the space came from."""

    params: tuple[Param, ...]
    source: str

    @property
    def names(self) -> list[str]:
        """The searched settings' names."""
        return [p.name for p in self.params]

    def sample(self, trial: Any) -> dict[str, Any]:
        """Every searched value of a trial: an optuna trial (suggested), a dict (Ray's config) or None (nothing)."""
        if trial is None:
            return {}
        if isinstance(trial, Mapping):
            return {p.name: trial[p.name] for p in self.params if p.name in trial}
        return {p.name: p.suggest(trial) for p in self.params}

    def split(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``values`` as (TrainingArguments values, method option values); the recipe's options are in neither."""
        target = {p.name: p.target for p in self.params}
        training = {k: v for k, v in values.items() if target.get(k) == "training"}
        return training, {k: v for k, v in values.items() if target.get(k) == "method"}

    def option_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values in ``values`` of the recipe's own options (see :class:`RecipeOptions`)."""
        target = {p.name: p.target for p in self.params}
        return {k: v for k, v in values.items() if target.get(k) == "options"}

    def training_space(self, trial: Any) -> dict[str, Any]:
        """The TrainingArguments values of a trial (what ``Trainer.hyperparameter_search`` sets on its arguments)."""
        return self.split(self.sample(trial))[0]

    def ray_config(self) -> dict[str, Any]:
        """The space as a Ray Tune ``param_space``."""
        return {p.name: p.ray_domain() for p in self.params}


def _defaults(dtype: type) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for f in dataclasses.fields(dtype):
        if f.init:
            found[f.name] = None if f.default is dataclasses.MISSING else f.default
    return found


def _fail(where: str, name: str, problem: str, fix: str) -> HpSearchError:
    return HpSearchError(f"{where}: {name}: {problem}. Fix: {fix}.")


def _number(where: str, name: str, key: str, value: Any, whole: bool) -> float:
    ok = isinstance(value, int) if whole else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        kind = "a whole number" if whole else "a number"
        raise _fail(where, name, f"{key}={value!r} is not {kind}", f"write `{key}:` as {kind}")
    return value


def _checked_range(where: str, name: str, spec: Mapping[str, Any], kind: str) -> dict[str, Any]:
    whole = kind == "int"
    if "low" not in spec or "high" not in spec:
        raise _fail(where, name, f"type {kind} needs low and high", f"add e.g. `{{type: {kind}, low: 1, high: 8}}`")
    low, high = (_number(where, name, key, spec[key], whole) for key in ("low", "high"))
    if not low < high:
        raise _fail(where, name, f"low={low!r} is not below high={high!r}", "give a range with low < high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _fail(where, name, f"log={log!r} is not true or false", "write `log: true` or leave it out")
    if log and low <= 0:
        raise _fail(where, name, f"a log range needs low > 0, got low={low!r}", "raise low, or drop `log: true`")
    step = spec.get("step")
    if step is not None and _number(where, name, "step", step, whole) <= 0:
        raise _fail(where, name, f"step={step!r} must be positive", "give a positive step or leave it out")
    if step is not None and log:
        raise _fail(where, name, "a range cannot have both step and log", "keep one of them")
    return {"low": low, "high": high, "log": log, "step": step}


def _param(where: str, name: str, spec: Any, target: str, default: Any) -> Param:
    if not isinstance(spec, Mapping):
        raise _fail(where, name, f"the range must be a mapping, got {spec!r}",
                    "write e.g. `{type: float, low: 1.0e-5, high: 1.0e-3, log: true}`")
    unknown = [k for k in spec if k not in _SPEC_KEYS]
    if unknown:
        raise _fail(where, name, f"unknown key {unknown[0]!r}", f"use only {', '.join(_SPEC_KEYS)}")
    kind = spec.get("type")
    if kind not in KINDS:
        raise _fail(where, name, f"type={kind!r} is not valid", f"write `type:` as one of {', '.join(KINDS)}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices or any(isinstance(c, (list, dict)) for c in choices):
            raise _fail(where, name, f"choices={choices!r} is not a non-empty list of values",
                        "write e.g. `{type: categorical, choices: [4, 8, 16]}`")
        return Param(name, kind, target, choices=tuple(choices))
    if isinstance(default, (bool, str, enum.Enum)):
        raise _fail(where, name, f"a {type(default).__name__} setting has no numeric range",
                    "search it as `{type: categorical, choices: [...]}`")
    return Param(name, kind, target, **_checked_range(where, name, spec, kind))


def _targets(training_type: type, method_args: Any, options: RecipeOptions | None) -> dict[str, tuple[str, Any]]:
    found = {name: ("training", default) for name, default in _defaults(training_type).items()}
    found.update({name: ("method", default) for name, default in _defaults(type(method_args)).items()})
    if options is not None:
        found.update({name: ("options", value) for name, value in options.values().items() if name not in found})
    return {name: value for name, value in found.items() if name not in FIXED}


def _check_fixed(where: str, name: str, options: RecipeOptions | None) -> None:
    if name in FIXED:
        raise _fail(where, name, "this setting is fixed for a search (it names the run, its output, its stages or "
                                 "the objective)", "set it as a flag, not in the space")
    if options is not None and name in _defaults(type(options.args)) and name not in options.searchable:
        raise _fail(where, name, "this option of the recipe is fixed for a search (every trial shares what it "
                                 f"sets); the recipe's searchable options are {', '.join(options.searchable)}",
                    "set it as a flag, not in the space")


def build_space(ranges: Mapping[Any, Any], where: str, training_type: type, method_args: Any,
                options: RecipeOptions | None = None) -> SearchSpace:
    """A :class:`SearchSpace` from ``name -> range`` mappings, each name checked against the run's flags.

    Args:
        ranges: ``name -> {type, low, high, log, step, choices}``.
        where: What the ranges came from, for messages (a file path, or the built-in space).
        training_type: The run's ``TrainingArguments`` class.
        method_args: The run's ``MethodArgs`` (its class has every method option).
        options: The recipe's own searchable options, if it has any.

    Returns:
        The space.

    Raises:
        HpSearchError: An unknown or fixed name (close matches suggested), or a malformed range.
    """
    targets = _targets(training_type, method_args, options)
    params = []
    for name, spec in ranges.items():
        _check_fixed(where, str(name), options)
        if name not in targets:
            close = difflib.get_close_matches(str(name), list(targets), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(map(repr, close))}?" if close else "no flag has a similar name"
            raise _fail(where, str(name), f"not a TrainingArguments flag or an option of the method or recipe ({hint})",
                        "name a flag of the recipe (see --help)")
        target, default = targets[name]
        params.append(_param(where, str(name), spec, target, default))
    if not params:
        raise HpSearchError(f"{where}: the search space is empty. Fix: give at least one setting and its range.")
    return SearchSpace(tuple(params), where)


def default_space(training_type: type, method_args: Any, options: RecipeOptions | None = None) -> SearchSpace:
    """The built-in space of ``method_args.method``: learning rate, epochs, weight decay, warm-up, method options.

    A recipe's own options add their ranges (``options.ranges``).

    Raises:
        HpSearchError: The method has no built-in space (give ``--hp_space``).
    """
    method = method_args.method
    if method not in METHOD_SPACES:
        raise HpSearchError(f"method={method!r} has no built-in search space. Fix: give --hp_space FILE.yaml "
                            f"(built-in spaces: {', '.join(sorted(METHOD_SPACES))}).")
    ranges = {**_COMMON, **METHOD_SPACES[method], **(options.ranges if options is not None else {})}
    return build_space(ranges, f"built-in space of method {method!r}", training_type, method_args, options)


def load_space(path: str | Path | None, training_type: type, method_args: Any,
               options: RecipeOptions | None = None) -> SearchSpace:
    """The space of ``--hp_space`` (a YAML file), or the method's built-in one when ``path`` is None.

    ``options``: the recipe's own searchable options, if it has any (see :class:`RecipeOptions`).

    Raises:
        HpSearchError: Unreadable YAML, not a mapping, or a bad entry (see :func:`build_space`).
    """
    if path is None:
        return default_space(training_type, method_args, options)
    where = f"--hp_space {path}"
    try:
        ranges = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise HpSearchError(f"{where}: cannot be read as YAML ({' '.join(str(err).split())}). Fix: check the path "
                            "and the syntax.") from None
    if not isinstance(ranges, Mapping):
        raise HpSearchError(f"{where} must map each setting to its range, got {type(ranges).__name__}. Fix: write "
                            "e.g. `learning_rate: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}`.")
    return build_space(ranges, where, training_type, method_args, options)


def space_summary(space: SearchSpace, names: Sequence[str] | None = None) -> list[str]:
    """One line per searched setting: its name and range."""
    return [f"{p.name}: {p.describe()}" for p in space.params if names is None or p.name in names]
