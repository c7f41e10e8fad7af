"""A small name -> object registry used wherever a config string picks an implementation."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from tlnlp.errors import UserError

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(UserError, KeyError):
    """Raised when a name is not registered; the message lists close matches and every available name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Maps names to implementations (dataset presets, methods, layer-group splitters, prompt specs...).

    Args:
        kind: What the registry holds, used in error messages (e.g. ``"method"``).
        field: The config field whose value is looked up here, used in error messages (e.g. ``"--method"``).
    """

    def __init__(self, kind: str, field: str | None = None) -> None:
        self.kind = kind
        self.field = field or kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")`` or a plain call."""

        def _add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return _add(obj) if obj is not None else _add

    def get(self, name: str) -> T:
        """Return the implementation registered as ``name``.

        Raises:
            RegistryError: ``name`` is unknown; the message suggests the closest names.
        """
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), self._items, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise RegistryError(
                f"Unknown {self.kind} {name!r} for {self.field}.{hint} Available: {', '.join(sorted(self._items))}."
            ) from None

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
