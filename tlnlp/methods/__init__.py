"""Transfer methods: how a loaded model is prepared and trained (which parameters train, at what rate, with what).

Pick one with ``--method``; :data:`METHODS` lists them. A method is a :class:`Method` with hooks that the
trainer and the output pipeline call; it lives in one module (:mod:`~tlnlp.methods.simple`) or one folder
(:mod:`~tlnlp.methods.ulmfit`, :mod:`~tlnlp.methods.adapters`, :mod:`~tlnlp.methods.feature_extraction`,
:mod:`~tlnlp.methods.setfit`, :mod:`~tlnlp.methods.sentence_fine_tuning`) and registers itself with
:func:`register_method`. Importing this package registers the built-in methods and the installed plugins
(:mod:`~tlnlp.methods.plugins`), then composes :class:`MethodArgs` from their options.
"""

from tlnlp.methods import (  # noqa: F401  (importing them registers the built-in methods)
    adapters,
    feature_extraction,
    sentence_fine_tuning,
    setfit,
    simple,
    ulmfit,
)
from tlnlp.methods.base import (
    METHODS,
    CardParts,
    Method,
    MethodResult,
    ParamGroup,
    active_methods,
    apply_method,
    log_trainable,
    register_method,
    reload_run,
)
from tlnlp.methods.optim import build_optimizer
from tlnlp.methods.plugins import MethodPluginError, load_method_plugins

load_method_plugins()

from tlnlp.methods.args import MethodArgs, method_args_class  # noqa: E402  (composed from every method above)

__all__ = [
    "METHODS",
    "CardParts",
    "Method",
    "MethodArgs",
    "MethodPluginError",
    "MethodResult",
    "ParamGroup",
    "active_methods",
    "apply_method",
    "build_optimizer",
    "load_method_plugins",
    "log_trainable",
    "method_args_class",
    "register_method",
    "reload_run",
]
