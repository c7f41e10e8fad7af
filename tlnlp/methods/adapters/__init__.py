"""PEFT adapters as transfer methods; importing this package registers every one of them.

* :mod:`~tlnlp.methods.adapters.options`: the adapter flags;
* :mod:`~tlnlp.methods.adapters.peft_config`: PEFT configs per method, wrapping the model, left padding;
* :mod:`~tlnlp.methods.adapters.adalora`: AdaLoRA's rank budget and full-rank checkpoint state;
* :mod:`~tlnlp.methods.adapters.outputs`: the merged model, the card's adapter parts, reloading a saved run;
* :mod:`~tlnlp.methods.adapters.method`: the hooks, one :class:`AdapterMethod` per adapter method.
"""

from tlnlp.methods.adapters.adalora import ADALORA_STATE_NAME, AdaLoraBudgetCallback
from tlnlp.methods.adapters.method import ADAPTER_DESCRIPTIONS, AdapterMethod
from tlnlp.methods.adapters.options import ADAPTER_METHODS, MERGEABLE_METHODS, PROMPT_METHODS, AdapterOptions
from tlnlp.methods.adapters.outputs import is_peft_model, reload_adapter, write_merged
from tlnlp.methods.adapters.peft_config import build_peft_config, needs_left_padding, wrap_with_adapter

__all__ = [
    "ADALORA_STATE_NAME",
    "ADAPTER_DESCRIPTIONS",
    "ADAPTER_METHODS",
    "MERGEABLE_METHODS",
    "PROMPT_METHODS",
    "AdaLoraBudgetCallback",
    "AdapterMethod",
    "AdapterOptions",
    "build_peft_config",
    "is_peft_model",
    "needs_left_padding",
    "reload_adapter",
    "wrap_with_adapter",
    "write_merged",
]
