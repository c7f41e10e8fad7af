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

from tlnlp.methods.base import METHODS, Method
from tlnlp.registry import PluginError

__all__ = ["ENTRY_POINT_GROUP", "MethodPluginError", "load_method_plugins"]

#: The entry-point group that method plugins register in.
ENTRY_POINT_GROUP = "tlnlp.methods"


class MethodPluginError(PluginError):
    """A method plugin failed to load; the message names its entry point."""


def load_method_plugins() -> list[str]:
    """Register the method of every installed ``tlnlp.methods`` entry point.

    Returns:
        The names of the methods the plugins provide.

    Raises:
        MethodPluginError: An entry point cannot be imported, is not a Method, or takes a registered name; the
            message names the entry point and its target.
    """
    return METHODS.load_plugins(ENTRY_POINT_GROUP, Method, MethodPluginError)
