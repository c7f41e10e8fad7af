"""One configuration mechanism: dataclasses + ``HfArgumentParser`` + ``--config FILE.yaml``; flags win."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import enum
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from transformers import HfArgumentParser, TrainingArguments
from transformers.hf_argparser import string_to_bool

from tlnlp.config.launch import rerun_command

__all__ = ["ConfigError", "TLNLP_TRAINING_DEFAULTS", "parse_args", "resolved_config", "write_run_config"]

#: Keys whose values are secrets: never written to run_config.yaml, logs or cards.
SECRET_KEYS = frozenset({"token", "hub_token", "push_to_hub_token", "use_auth_token"})

#: TrainingArguments defaults tlnlp changes (a YAML key or flag still overrides them).
TLNLP_TRAINING_DEFAULTS: dict[str, Any] = {
    "train_sampling_strategy": "group_by_length",  # length-grouped batches: far less padding
    "report_to": "tensorboard",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "logging_steps": 20,
    "average_tokens_across_devices": False,  # keeps classification loss on the same scale under several processes
}


#: The Hugging Face example scripts' stage flags; tlnlp runs every stage unless one of them is given.
STAGE_FLAGS = ("do_train", "do_eval", "do_predict")


class ConfigError(SystemExit):
    """A configuration problem; exits with status 2 and a message that names the key and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = re.sub(r"\s*\n\s*", " ", message.strip())  # one line, as every fixable error is printed

    def __str__(self) -> str:
        return self.message


def _suggest(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


#: What a YAML value must be for a flag of each type.
_KINDS = {int: "an integer", float: "a number", string_to_bool: "true or false"}
#: Sizes that TrainingArguments (and tlnlp's evaluation settings) take unchecked: field -> smallest valid value.
_MINIMUM = {"per_device_train_batch_size": 1, "per_device_eval_batch_size": 1, "gradient_accumulation_steps": 1,
            "batch_size": 1, "learning_rate": 0, "num_train_epochs": 0}
_ARGPARSE_FLAG = re.compile(r"^argument (--[\w-]+)(?:/[^:]+)?: (.*)$", re.DOTALL)


def _flag_error(message: str) -> NoReturn:
    """An argparse error as one :class:`ConfigError` line (argparse itself prints its whole usage first)."""
    found = _ARGPARSE_FLAG.match(message)
    if found:
        flag, problem = found.groups()
        raise ConfigError(f"{flag}: {problem}. Fix: give {flag} a valid value (on the command line, or as "
                          f"`{flag[2:]}:` in the --config file); --help shows each flag's type and choices.")
    raise ConfigError(f"{message}. Fix: give them on the command line or in the --config file (see --help).")


def _fits(action: argparse.Action, item: Any) -> bool:
    if isinstance(item, (list, dict)) or (isinstance(item, bool) and action.type in (int, float)):
        return False
    try:
        converted = action.type(item if isinstance(item, str) else str(item)) if action.type else item
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return not action.choices or converted in action.choices


def _check_file_types(parser: argparse.ArgumentParser, values: Mapping[str, Any], path: str) -> None:
    """Check each YAML value against its flag's type and choices (argparse checks only the strings it parses)."""
    actions = {action.dest: action for action in parser._actions}
    for key, value in values.items():
        action = actions.get(key)
        kind = _KINDS.get(action.type) if action is not None else None
        if value is None or action is None or (kind is None and not action.choices):
            continue
        many = action.nargs in ("+", "*")
        if all(_fits(action, item) for item in (value if many and isinstance(value, list) else [value])):
            continue
        expected = f"one of: {', '.join(map(str, action.choices))}" if action.choices else kind
        example = f", e.g. `{key}: {action.default}`" if action.default is not None else ""
        raise ConfigError(f"{path}: {key}={value!r} is not {expected}{' (or a list of them)' if many else ''}. "
                          f"Fix: write {expected}{example}.")


def _check_minimums(outputs: Sequence[Any]) -> None:
    for out in outputs:
        for name, least in _MINIMUM.items():
            value = getattr(out, name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < least:
                raise ConfigError(f"{name}={value!r} must be at least {least}. Fix: give --{name} (or `{name}:` in "
                                  f"the --config file) a value of {least} or more.")


def _field_names(types: Sequence[type]) -> dict[str, type]:
    names: dict[str, type] = {}
    for dtype in types:
        for f in dataclasses.fields(dtype):
            if f.init:
                names[f.name] = dtype
    return names


def _aliases(types: Sequence[type]) -> dict[str, str]:
    """Other names of fields (``revision`` for ``model_revision``, as the HF example scripts spell them) -> field."""
    found: dict[str, str] = {}
    for dtype in types:
        for f in dataclasses.fields(dtype):
            names = f.metadata.get("aliases", []) if f.init else []
            for alias in [names] if isinstance(names, str) else names:
                found[alias.lstrip("-")] = f.name
    return found


def _load_yaml(path: str, valid: dict[str, type], aliases: dict[str, str] | None = None) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config {path!r}: file not found. Fix: check the path; relative paths start from the "
                          "current working directory.")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"--config {path!r} is not valid YAML: {getattr(err, 'problem', None) or err}{where}. "
                          "Fix: correct the syntax there (quotes, brackets, a space after each colon).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path!r} must be a mapping of key: value, got {type(data).__name__}. Fix: "
                          "write one `key: value` per line, e.g. `learning_rate: 0.0001`.")
    for alias, name in (aliases or {}).items():
        if alias in data:
            if name in data:
                raise ConfigError(f"{path} sets both {alias!r} and {name!r}, two names of one setting; keep {name!r}.")
            data[name] = data.pop(alias)
    for key in data:
        if key not in valid:
            raise ConfigError(f"Unknown key {key!r} in {path}.{_suggest(str(key), list(valid))} "
                              "Every key must be a flag of the recipe (see --help).")
    return data


def _environment_defaults() -> dict[str, Any]:
    """Defaults that depend on how the process was launched.

    Several processes (``WORLD_SIZE`` > 1, e.g. ``accelerate launch --num_processes 2``) on a machine with no CUDA
    device would each train alone unless ``use_cpu`` is on; turning it on joins them in one gloo process group.
    """
    import torch  # deferred: `import tlnlp.config` stays free of torch; only the launch defaults need it

    if torch.cuda.is_available():
        return {}
    found: dict[str, Any] = {"dataloader_pin_memory": False}  # nothing to pin memory for without a GPU
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        found["use_cpu"] = True
    return found


def parse_args(*types: type, args: Sequence[str] | None = None,
               defaults: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """Parse ``--config FILE.yaml`` plus flags into one instance of each dataclass in ``types``.

    The YAML gives defaults and flags override it; see :func:`_parse` for the rules. Config errors are printed to
    stderr, then raised.

    Args:
        *types: Dataclass types, e.g. ``ModelArgs, DataArgs, MethodArgs, TrainingArgs`` (``MethodArgs`` from
            :mod:`tlnlp.methods`).
        args: Command line (default ``sys.argv[1:]``).
        defaults: Extra recipe-specific defaults (lowest priority).

    Returns:
        One instance per type, in order.

    Raises:
        ConfigError: unknown key or flag, unreadable YAML, or an invalid value (exit status 2).
    """
    try:
        return _parse(types, args, defaults)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise


def _escape_percent(parser: argparse.ArgumentParser) -> None:
    """Double every ``%`` of the flags' help that is no ``%(name)s`` field ("10% of the rows"): argparse formats it."""
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = re.sub(r"%(?!\()", "%%", action.help)


def _parse(types: Sequence[type], args: Sequence[str] | None,
           defaults: dict[str, Any] | None) -> tuple[Any, ...]:
    """Implements :func:`parse_args`.

    The YAML gives defaults, command-line flags override it; unknown keys and flags are errors that name the
    closest valid name. ``TrainingArguments`` works unchanged, with tlnlp's defaults from
    :data:`TLNLP_TRAINING_DEFAULTS` (overridable). The explicitly given settings are kept on the first returned
    object's ``_tlnlp_explicit`` attribute for :func:`write_run_config`.
    """
    argv = list(sys.argv[1:] if args is None else args)
    valid = _field_names(types)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.error = _flag_error  # type: ignore[method-assign]  # one line instead of the usage text
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)
    file_values = _load_yaml(known.config, valid, _aliases(types)) if known.config else {}

    parser = HfArgumentParser(types, allow_abbrev=False)
    parser.error = _flag_error  # type: ignore[method-assign]
    parser.add_argument("--config", default=None, help="YAML file of defaults; flags override it.")
    _escape_percent(parser)
    _check_file_types(parser, file_values, str(known.config))
    base = {k: v for k, v in {**TLNLP_TRAINING_DEFAULTS, **_environment_defaults(), **(defaults or {})}.items()
            if k in valid}
    merged = {**base, **file_values}
    # values given in the file satisfy required flags (e.g. output_dir)
    for action in parser._actions:
        if action.dest in merged:
            action.required = False
    parser.set_defaults(**merged)

    # which flags were given explicitly (for run_config.yaml): parse again with every default suppressed
    explicit_parser = HfArgumentParser(types, allow_abbrev=False, argument_default=argparse.SUPPRESS)
    explicit_parser.error = _flag_error  # type: ignore[method-assign]
    _escape_percent(explicit_parser)  # --help is answered by this parser, the first to read the flags
    for action in explicit_parser._actions:
        action.required = False
        if action.dest != "help":
            action.default = argparse.SUPPRESS
    explicit_ns, unknown = explicit_parser.parse_known_args(rest)
    if unknown:
        flag = next((u for u in unknown if u.startswith("-")), unknown[0])
        name = flag.lstrip("-").split("=")[0]
        raise ConfigError(f"Unknown flag {flag!r}.{_suggest(name, list(valid))} Run with --help for every flag.")

    try:
        outputs = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=False)
    except ValueError as err:  # raised by a dataclass __post_init__
        raise ConfigError(f"Invalid configuration: {err}") from None
    outputs = tuple(o for o in outputs if not isinstance(o, argparse.Namespace))
    _check_minimums(outputs)
    explicit = {**file_values, **vars(explicit_ns)}
    explicit.pop("config", None)
    object.__setattr__(outputs[0], "_tlnlp_explicit", explicit)
    object.__setattr__(outputs[0], "_tlnlp_config_file", known.config)
    for out in outputs:  # which of --do_train/--do_eval/--do_predict were given (see tlnlp.training.stages)
        if isinstance(out, TrainingArguments):
            object.__setattr__(out, "_tlnlp_stages", {k: bool(v) for k, v in explicit.items() if k in STAGE_FLAGS})
    return outputs


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def resolved_config(*objs: Any) -> dict[str, Any]:
    """The settings a run used, as a flat dict that parses back with ``--config``; secrets removed.

    tlnlp's own dataclasses are written in full; for ``TrainingArguments`` (over a hundred fields) the values
    given explicitly (file or flags) and tlnlp's changed defaults are written, plus the seed.
    """
    explicit: dict[str, Any] = {}
    for obj in objs:
        explicit.update(getattr(obj, "_tlnlp_explicit", {}))
    out: dict[str, Any] = {}
    for obj in objs:
        if not dataclasses.is_dataclass(obj):
            continue
        own = not isinstance(obj, TrainingArguments)
        for f in dataclasses.fields(obj):
            if not f.init or f.name in SECRET_KEYS:
                continue
            if own or f.name in explicit or f.name in TLNLP_TRAINING_DEFAULTS or f.name in _ALWAYS_WRITTEN:
                out[f.name] = _plain(getattr(obj, f.name))
    return out


_ALWAYS_WRITTEN = ("seed", "output_dir", "learning_rate", "num_train_epochs", "max_steps",
                   "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")


def write_run_config(output_dir: str | os.PathLike[str], *objs: Any, recipe: str | None = None) -> Path:
    """Write ``run_config.yaml`` (see :func:`resolved_config`) into ``output_dir``; returns its path.

    Its header is the command that reruns it (:func:`tlnlp.config.launch.rerun_command`) when ``recipe`` is given.
    """
    path = Path(output_dir) / "run_config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = rerun_command(recipe) if recipe else "accelerate launch recipes/<recipe>.py --config run_config.yaml"
    header = f"# Settings of this run. Reproduce it with:\n#   {command}\n"
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(resolved_config(*objs), sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path
