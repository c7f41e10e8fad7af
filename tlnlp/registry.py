"""A small name -> object registry used wherever a config string picks an implementation."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from tlnlp.errors import UserError

__all__ = ["PluginError", "Registry", "RegistryError"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RegistryError(UserError, KeyError):
    """Raised when a name is not registered; the message lists close matches and every available name."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class PluginError(ImportError):
    """A plugin (an installed entry point) failed to load; the message names the entry point."""


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

    def _register_plugin(self, found: Any, kind: type) -> str:
        item = found() if isinstance(found, type) and issubclass(found, kind) else found
        name = getattr(item, "name", None)
        if not isinstance(item, kind) or not name:
            raise TypeError(f"it is {found!r}, not a {kind.__name__} subclass or instance with a name")
        if name in self._items:
            if type(self._items[name]) is type(item):  # registered by its decorator when its module was imported
                return name
            raise ValueError(f"{self.kind} {name!r} is already registered by {self._items[name]!r}")
        self._items[name] = item
        return name

    def load_plugins(self, group: str, kind: type, error: type[Exception] = PluginError) -> list[str]:
        """Register what every installed entry point of ``group`` names: a ``kind`` subclass or instance.

        A subclass is registered as an instance under its ``name``; one that its own decorator already registered
        when its module was imported is not registered twice, so loading is idempotent.

        Args:
            group: The entry-point group, e.g. ``"tlnlp.methods"``.
            kind: The base class every plugin object must be (or subclass).
            error: The exception raised for a plugin that fails.

        Returns:
            The names the plugins registered, in entry-point order.

        Raises:
            PluginError: (or ``error``) An entry point cannot be imported, is not a ``kind``, or takes a registered
                name; the message names the entry point and its target.
        """
        names = []
        for entry in entry_points(group=group):
            try:
                names.append(self._register_plugin(entry.load(), kind))
            except Exception as err:  # noqa: BLE001 - any failure of third-party code: name the entry point
                raise error(f"{self.kind.capitalize()} plugin {entry.name!r} ({entry.value}, entry point group "
                            f"{group!r}) could not be loaded: {err}") from err
        if names:
            logger.debug("%s plugins: %s", self.kind.capitalize(), ", ".join(names))
        return names
