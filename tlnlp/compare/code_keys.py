"""The code behind a ladder cell, as a hash: a cell computed by other code is not reused.

A cell's result depends on its configuration (hashed into its key, :mod:`tlnlp.compare.cells`) and on the code that
computes it. :func:`strategy_code` hashes that code: the source files of the module that defines the strategy, every
tlnlp module that module imports (a package counts as all the ``.py`` files of its folder, one level deep), the
folder of the method it trains (``tlnlp/methods/<name>/`` or a plugin's package) with the tlnlp modules its files
import, the code of a composite's member strategies (``ensemble:<strategy>``, ``vote:<a>,<b>``), and the versions of
tlnlp and the libraries that compute numbers (torch, transformers, datasets, peft, sentence-transformers, setfit,
scikit-learn, numpy). An edit deeper in the import graph (a module only reached through two imports) is not seen:
when such an edit changes results, use a new ``--cell_cache_dir`` or bump :data:`tlnlp.compare.cells.CELL_SCHEMA`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tlnlp.methods import METHODS

__all__ = ["LIBRARIES", "code_digest", "code_files", "module_code", "strategy_code"]

logger = logging.getLogger(__name__)

#: Distributions whose versions are part of every cell's code hash.
LIBRARIES = ("tlnlp", "torch", "transformers", "datasets", "peft", "sentence-transformers", "setfit",
             "scikit-learn", "numpy")

_ROOT_PACKAGE = "tlnlp"


def _module_files(name: str) -> list[Path]:
    """The source files of a module: the file itself, or every ``.py`` file of a package's folder."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return []
    file = getattr(module, "__file__", None)
    if not file:
        return []
    path = Path(file)
    if path.name == "__init__.py":
        return sorted(path.parent.glob("*.py"))
    return [path]


def _imported_modules(path: Path) -> set[str]:
    """The tlnlp modules a source file imports anywhere (top-level and deferred imports alike)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == _ROOT_PACKAGE or name.startswith(f"{_ROOT_PACKAGE}.")}


def _with_imports(paths: Iterable[Path]) -> set[Path]:
    """The files, plus the source files of every tlnlp module they import directly."""
    found = set(paths)
    for own in list(found):
        for name in _imported_modules(own):
            found.update(_module_files(name))
    return found


def _method_files(method: str) -> list[Path]:
    """The files of a method: its folder (``tlnlp/methods/<name>/``, a plugin's package) or its module file."""
    path = Path(inspect.getfile(type(METHODS.get(method))))
    methods_root = Path(importlib.import_module("tlnlp.methods").__file__ or "").parent
    if path.parent == methods_root:  # a method defined in a shared module (e.g. simple.py)
        return [path]
    return sorted(path.parent.glob("*.py"))


def _closure_values(function: Callable[..., Any], depth: int = 3) -> Iterable[Any]:
    """The values a function's closure holds, and those of the functions in it (``depth`` levels)."""
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        yield value
        if callable(value) and depth > 0 and inspect.isfunction(value):
            yield from _closure_values(value, depth - 1)


def code_files(strategy: Any, seen: frozenset[str] = frozenset()) -> set[Path]:
    """The source files behind a :class:`~tlnlp.compare.strategies.Strategy` (see the module's docstring)."""
    from tlnlp.compare.strategies import get_strategy  # deferred: strategies imports the ladder's modules

    files = _with_imports(path for function in (strategy.run, strategy.settings)
                          for path in _module_files(function.__module__))
    values = [v for f in (strategy.run, strategy.settings) for v in _closure_values(f)]
    names = {v for v in values if isinstance(v, str)}
    names.update(v for group in values if isinstance(group, tuple) for v in group if isinstance(v, str))
    for value in names:
        if value in METHODS:
            files.update(_with_imports(_method_files(value)))
        if value != strategy.name and value not in seen:
            try:
                member = get_strategy(value)
            except Exception:  # noqa: BLE001 - a closure's string that names no strategy (a dataset, a template)
                continue
            files.update(code_files(member, seen | {strategy.name}))
    return files


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _digest(files: Iterable[Path]) -> str:
    """sha256 (first 16 hex digits) of the files' contents (named relative to their package) and the versions."""
    digest = hashlib.sha256()
    for path in sorted(set(files), key=lambda p: (p.parent.name, p.name, str(p))):
        digest.update(f"{path.parent.name}/{path.name}\0".encode())
        digest.update(path.read_bytes())
    for name, version in _versions().items():
        digest.update(f"{name}=={version}\0".encode())
    return digest.hexdigest()[:16]


def code_digest(strategy: Any) -> str:
    """Hash of the code behind a strategy (its :func:`code_files`) and of the libraries' versions."""
    files = code_files(strategy)
    logger.debug("Code of strategy %s: %d files.", strategy.name, len(files))
    return _digest(files)


@functools.cache
def strategy_code(name: str) -> str:
    """Hash of the code that computes the cells of strategy ``name`` (computed once per process)."""
    from tlnlp.compare.strategies import get_strategy  # deferred: strategies imports the ladder's modules

    return code_digest(get_strategy(name))


@functools.cache
def module_code(name: str) -> str:
    """Hash of one module's code (with its direct tlnlp imports), e.g. for pieces cached outside the cells."""
    return _digest(_with_imports(_module_files(name)))
