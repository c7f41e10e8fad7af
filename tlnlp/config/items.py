"""Items of a list flag that are each a small set of flags: ``--stages`` (staged transfer), ``--tasks`` (multi-task).

An item is ``"key=value,key=value"`` on the command line, or a mapping in YAML. :func:`key_value_pairs` splits it;
:func:`parse_item` parses its flags with the recipes' own parser (:func:`tlnlp.config.parse_args`), so values are
typed and checked exactly as the same flags of a recipe, and any error comes back naming the item.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tlnlp.config.parser import ConfigError, parse_args

__all__ = ["item_argv", "key_value_pairs", "parse_item"]


def key_value_pairs(item: Any, where: str, example: str, error: type[Exception]) -> list[tuple[str, Any]]:
    """``(key, value)`` of an item, in order; ``where`` (e.g. ``"stages[0]"``) and ``example`` fill the errors.

    Raises:
        error: The item is neither a mapping nor ``key=value`` pairs separated by commas.
    """
    if isinstance(item, Mapping):
        return [(str(key), value) for key, value in item.items()]
    if not isinstance(item, str):
        raise error(f"{where}: {item!r} is not key=value pairs; write them separated by commas ({example}) or, in "
                    "YAML, a mapping.")
    pairs = []
    for part in (p.strip() for p in item.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise error(f"{where}: {part!r} is not key=value. Write comma-separated key=value pairs, e.g. {example} "
                        "(or, in YAML, a mapping).")
        pairs.append((key.strip(), value.strip()))
    return pairs


def item_argv(raw: Mapping[str, Any], list_keys: frozenset[str] = frozenset()) -> list[str]:
    """Command-line flags of an item's keys: booleans as true/false, lists (and ``list_keys`` strings) split."""
    argv: list[str] = []
    for key, value in raw.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, bool):
            argv.append(str(value).lower())
        elif isinstance(value, (list, tuple)):
            argv += [str(v) for v in value]
        elif key in list_keys and isinstance(value, str):
            argv += value.split()
        else:
            argv.append(str(value))
    return argv


def parse_item(dtypes: Sequence[type], argv: list[str], defaults: dict[str, Any], where: str, what: str,
               error: type[Exception]) -> tuple[Any, ...]:
    """Parse an item's flags into ``dtypes`` with the recipes' parser; a refused value raises ``error`` naming it.

    Args:
        dtypes: The dataclasses the item's keys belong to.
        argv: :func:`item_argv` of the item.
        defaults: Values the item inherits (its keys override them).
        where: The item's place, for messages (e.g. ``"tasks[1]"``).
        what: What an item is, for messages (``"stage"``, ``"task"``).
        error: The exception to raise.
    """
    sink = io.StringIO()
    try:
        with contextlib.redirect_stderr(sink):
            return parse_args(*dtypes, args=argv, defaults=defaults)
    except ConfigError as err:
        message = str(err).replace("Invalid configuration: ", "")
        raise error(f"{where}: {message}") from None
    except SystemExit:  # argparse refused a value (e.g. epochs=abc); its message went to stderr
        lines = [line for line in sink.getvalue().splitlines() if line.strip()]
        message = lines[-1].split("error: ", 1)[-1] if lines else "a value is not valid"
        message = re.sub(r"argument --(\w+)(/--[\w-]+)?:", r"\1:", message)
        raise error(f"{where}: {message}. Fix that key's value in the {what}.") from None
