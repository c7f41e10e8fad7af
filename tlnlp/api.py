"""The recipes from Python and from the installed command: ``tlnlp.train(...)`` and ``tlnlp train <recipe> ...``.

The recipes ship inside the wheel as ``tlnlp.recipes`` (the same files as ``recipes/`` in a checkout), so both
entry points work wherever tlnlp is installed::

    import tlnlp
    metrics = tlnlp.train("classification", config="classification/movie_minilm.yaml", output_dir="runs/movie")
    classifier = tlnlp.load_pipeline("runs/movie")

    tlnlp train classification --config classification/movie_minilm.yaml --output_dir runs/movie
    accelerate launch -m tlnlp train classification --config classification/movie_minilm.yaml --output_dir runs/movie

A ``config`` that is not a file is looked up among the configs that ship with the recipes
(``recipes/configs/<recipe>/<name>.yaml``), so ``movie_minilm`` and ``classification/movie_minilm.yaml`` both work.
"""

from __future__ import annotations

import importlib
import importlib.resources
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlnlp.config import ConfigError, parse_args
from tlnlp.config.launch import launched
from tlnlp.errors import UserError

__all__ = ["RecipeError", "compare", "config_path", "flags_to_argv", "recipe_names", "recipe_path", "run_command",
           "shipped_configs", "train"]


class RecipeError(UserError, ValueError):
    """An unknown recipe or config name, or a setting the Python entry points cannot pass; the message says which."""


def _recipes_root() -> Path:
    return Path(str(importlib.resources.files("tlnlp.recipes")))


def recipe_names() -> list[str]:
    """The recipes that ship with tlnlp (``classification``, ``compare``, ``question_answering``...)."""
    return sorted(p.stem for p in _recipes_root().glob("*.py") if not p.name.startswith("_"))


def recipe_path(recipe: str) -> Path:
    """The file of a shipped recipe.

    Raises:
        RecipeError: ``recipe`` is not one of :func:`recipe_names`; the message lists them.
    """
    names = recipe_names()
    if recipe not in names:
        raise RecipeError(f"recipe={recipe!r} is not a tlnlp recipe; choose one of: {', '.join(names)}.")
    return _recipes_root() / f"{recipe}.py"


def shipped_configs(recipe: str) -> list[str]:
    """The configs that ship for ``recipe``, as ``<recipe>/<name>.yaml`` paths under ``recipes/configs``."""
    folder = _recipes_root() / "configs" / recipe
    return sorted(f"{recipe}/{p.name}" for p in folder.glob("*.yaml")) if folder.is_dir() else []


def config_path(recipe: str, config: str) -> str:
    """``config`` itself when it is a file; else the shipped config it names (with or without folder and ``.yaml``).

    Raises:
        RecipeError: neither a file nor a shipped config; the message lists the recipe's shipped configs.
    """
    if Path(config).is_file():
        return config
    root = _recipes_root() / "configs"
    name = config if config.endswith((".yaml", ".yml")) else f"{config}.yaml"
    for candidate in (root / name, root / recipe / name):
        if candidate.is_file():
            return str(candidate)
    shipped = ", ".join(shipped_configs(recipe)) or "none"
    raise RecipeError(f"config={config!r} is neither a file nor a config shipped with tlnlp. Give a YAML file's path, "
                      f"or one of {recipe}'s shipped configs: {shipped}.")


def _flag_values(name: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return [f"--{name}", str(value).lower()]
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, dict) for v in value):
            raise RecipeError(f"{name} holds mappings, which only a YAML config can carry: put {name} in a config "
                              "file and pass config='that.yaml'.")
        return [f"--{name}", *(str(v) for v in value)]
    if isinstance(value, dict):
        raise RecipeError(f"{name}={value!r} is a mapping, which only a YAML config can carry: put it in a config "
                          "file and pass config='that.yaml'.")
    return [f"--{name}", str(value)]


def flags_to_argv(recipe: str, config: str | None = None, *, resolve: bool = True, **flags: Any) -> list[str]:
    """The command-line arguments for ``recipe`` that ``config`` plus ``flags`` stand for (a None flag is left out).

    With ``resolve``, a shipped config's name becomes its path; without, it stays as given (for the run's card).
    """
    argv = ["--config", config_path(recipe, config) if resolve else config] if config else []
    for name, value in flags.items():
        if value is not None:
            argv += _flag_values(name, value)
    return argv


def train(recipe: str = "classification", config: str | None = None, **flags: Any) -> dict[str, Any]:
    """Run a recipe in this process, as ``tlnlp train <recipe>`` would, and return its metrics.

    Args:
        recipe: A shipped recipe (:func:`recipe_names`): ``classification``, ``question_answering``, ``ulmfit``...
        config: A YAML file, or the name of a shipped config (``movie_minilm``, ``classification/trec6_minilm``).
        **flags: Any flag of the recipe, by its name (``output_dir="runs/x"``, ``max_steps=50``, ``method="lora"``);
            they override the config, as flags do on the command line.

    Returns:
        The recipe's metrics (``train_*``, ``eval_*``, ``test_*`` for the training recipes).

    Raises:
        RecipeError: an unknown recipe or config, a misspelt flag or an invalid value; the message names the fix.
    """
    argv = flags_to_argv(recipe, config, **flags)
    module = importlib.import_module(f"tlnlp.recipes.{Path(recipe_path(recipe)).stem}")
    with launched("python", recipe, flags_to_argv(recipe, config, resolve=False, **flags)):
        try:
            parsed = parse_args(*module.ARGUMENTS, args=argv, defaults=getattr(module, "DEFAULTS", None))
        except ConfigError as err:
            raise RecipeError(str(err)) from None
        return module.main(*parsed)


def compare(config: str | None = None, **flags: Any) -> dict[str, Any]:
    """Run the transfer ladder (``recipes/compare.py``) in this process; returns ``{strategy}/{budget}/{metric}``.

    See :func:`train` for ``config`` and ``flags`` (e.g. ``compare(config="movie_minilm_quick",
    output_dir="runs/ladder")``). The table, plots and cells are in ``output_dir``.
    """
    return train("compare", config=config, **flags)


def _print_recipes() -> int:
    print("tlnlp train <recipe> [--config FILE_OR_SHIPPED_NAME] [--flag value ...]\n\nRecipes and their shipped "
          "configs (run `tlnlp train <recipe> --help` for every flag):")
    for name in recipe_names():
        print(f"  {name}")
        for config in shipped_configs(name):
            print(f"      --config {config}")
    return 0


def run_command(argv: Sequence[str]) -> int:
    """``tlnlp train <recipe> [flags]``: run the shipped recipe file as its own ``__main__``, with these flags.

    Under ``accelerate launch -m tlnlp train ...`` every process runs it, as with the recipe file itself.
    """
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        return _print_recipes()
    recipe, rest, given = argv[0], argv[1:], tuple(argv[1:])
    try:
        script = recipe_path(recipe)
        if "--config" in rest[:-1]:
            at = rest.index("--config") + 1
            rest[at] = config_path(recipe, rest[at])
    except RecipeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = [str(script), *rest]
    try:
        with launched("cli", recipe, given):
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved
    return 0
