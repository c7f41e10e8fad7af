"""Transfer methods: how a loaded model is prepared for training (which parameters train, at what rate).

Pick one with ``--method``; :data:`METHODS` lists them. Importing this package registers the built-in methods.
"""

from tlnlp.methods import simple as _simple  # noqa: E402, F401, I001  (registers "full", "feature_extraction")
from tlnlp.methods import adapters as _adapters  # noqa: E402, F401, I001  (registers lora, dora, ia3, ...)
from tlnlp.methods import ulmfit as _ulmfit  # noqa: E402, F401, I001  (registers "ulmfit")
from tlnlp.methods.base import METHODS, MethodFn, MethodResult, ParamGroup, apply_method, log_trainable

__all__ = ["METHODS", "MethodFn", "MethodResult", "ParamGroup", "apply_method", "log_trainable"]
