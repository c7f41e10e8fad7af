"""Methods from other packages: the ``tlnlp.methods`` entry-point group.

A package registers a method by naming it in its ``pyproject.toml``::

    [project.entry-points."tlnlp.methods"]
    freeze_embeddings = "my_package.methods:FreezeEmbeddings"

The object is a :class:`~tlnlp.methods.Method` subclass (registered as an instance under its ``name``) or an
instance. A class that already registered itself with ``@register_method`` when its module was imported is not
registered twice. :mod:`tlnlp.methods` loads every plugin once, when it is first imported, so
``recipes/classification.py --method <name>`` works for any installed plugin.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from tlnlp.methods.base import METHODS, Method

__all__ = ["ENTRY_POINT_GROUP", "MethodPluginError", "load_method_plugins"]

logger = logging.getLogger(__name__)

#: The entry-point group that method plugins register in.
ENTRY_POINT_GROUP = "tlnlp.methods"


class MethodPluginError(ImportError):
    """A method plugin failed to load; the message names its entry point."""


def _register(found: object) -> str:
    method = found() if isinstance(found, type) and issubclass(found, Method) else found
    if not isinstance(method, Method) or not method.name:
        raise TypeError(f"it is {found!r}, not a Method subclass or instance with a name")
    if method.name in METHODS:
        if type(METHODS.get(method.name)) is type(method):  # registered by @register_method on import
            return method.name
        raise ValueError(f"method {method.name!r} is already registered by {METHODS.get(method.name)!r}")
    METHODS.register(method.name, method)
    return method.name


def load_method_plugins() -> list[str]:
    """Register the method of every installed ``tlnlp.methods`` entry point.

    Returns:
        The names of the methods the plugins provide.

    Raises:
        MethodPluginError: An entry point cannot be imported, is not a Method, or takes a registered name; the
            message names the entry point and its target.
    """
    names = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            names.append(_register(entry.load()))
        except Exception as err:  # noqa: BLE001 - any failure of third-party code: name the entry point
            raise MethodPluginError(f"Method plugin {entry.name!r} ({entry.value}, entry point group "
                                    f"{ENTRY_POINT_GROUP!r}) could not be loaded: {err}") from err
    if names:
        logger.debug("Method plugins: %s", ", ".join(names))
    return names
