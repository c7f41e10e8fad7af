"""How this process was started, so that cards and ``run_config.yaml`` print a command that works the same way.

A recipe runs three ways: as a script from a checkout (``accelerate launch recipes/classification.py ...``), through
the installed command (``tlnlp train classification ...``, alone or under ``accelerate launch -m tlnlp train ...``),
or from Python (``tlnlp.train("classification", ...)``). The command line and the Python entry points record which
with :func:`set_launch`; a recipe started as a script records nothing and keeps the script form.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Launch", "current_launch", "launched", "launched_under_accelerate", "rerun_command", "set_launch"]

#: Ways a recipe can be started.
LAUNCH_KINDS = ("script", "cli", "python")


@dataclass(frozen=True)
class Launch:
    """How the running recipe was started.

    Attributes:
        kind: ``script`` (a recipe file run directly), ``cli`` (``tlnlp train``) or ``python`` (``tlnlp.train``).
        recipe: The recipe's name (``classification``), or None for a script of one's own.
        argv: The recipe's own arguments (after the recipe name), for the reproduce command.
    """

    kind: str = "script"
    recipe: str | None = None
    argv: tuple[str, ...] = field(default_factory=tuple)


_current: list[Launch] = [Launch()]


def set_launch(kind: str, recipe: str, argv: Sequence[str] = ()) -> None:
    """Record that ``recipe`` was started by the command line (``cli``) or from Python (``python``)."""
    if kind not in LAUNCH_KINDS:
        raise ValueError(f"kind={kind!r} is not a launch kind; choose one of: {', '.join(LAUNCH_KINDS)}.")
    _current[0] = Launch(kind, recipe, tuple(str(a) for a in argv))


@contextmanager
def launched(kind: str, recipe: str, argv: Sequence[str] = ()) -> Iterator[None]:
    """Within the block, the running recipe counts as started by ``kind`` (see :func:`set_launch`); restored after."""
    before = _current[0]
    set_launch(kind, recipe, argv)
    try:
        yield
    finally:
        _current[0] = before


def current_launch() -> Launch:
    """How the running recipe was started (``script`` unless :func:`set_launch` said otherwise)."""
    return _current[0]


def launched_under_accelerate() -> bool:
    """Whether ``accelerate launch`` started this process (it sets ``ACCELERATE_MIXED_PRECISION`` for its children)."""
    return "ACCELERATE_MIXED_PRECISION" in os.environ


def _command_prefix(recipe: str) -> str:
    launch = current_launch()
    if launch.kind == "script":
        script = recipe if recipe.endswith(".py") else f"recipes/{recipe}.py"
        return f"accelerate launch {shlex.quote(script)}"
    name = Path(recipe).stem
    if launched_under_accelerate():
        return f"accelerate launch -m tlnlp train {name}"
    return f"tlnlp train {name}"


def rerun_command(recipe: str, args: Sequence[str] = ("--config", "run_config.yaml")) -> str:
    """The command that runs ``recipe`` again with ``args``, in the form this process was started with.

    Args:
        recipe: The recipe's name (``classification``) or, for a script of one's own, its ``.py`` path.
        args: The recipe's arguments, already free of secrets.

    Returns:
        ``accelerate launch recipes/<recipe>.py ...`` for a script run; ``tlnlp train <recipe> ...`` (under
        ``accelerate launch -m`` when accelerate started it) for a run started by the command line or from Python,
        since the installed command works wherever tlnlp is installed.
    """
    return " ".join([_command_prefix(recipe), *(shlex.quote(str(a)) for a in args)])
