"""Models: resolve and load backbones and classifiers, split any architecture into layer groups, PEFT adapters.

The question-answering and language-model heads load in their task folders (:mod:`tlnlp.tasks`).
"""

from tlnlp.models.adapter_io import AdapterSet, is_adapter_dir, load_adapter_model, merge_adapter
from tlnlp.models.adapters import find_head_modules, find_target_modules, peft_task_type
from tlnlp.models.gguf import cache_root, convert_gguf
from tlnlp.models.layers import (
    LAYER_SPLITTERS,
    LayerGroup,
    count_parameters,
    find_blocks,
    get_layer_groups,
    set_requires_grad,
    unwrap_model,
)
from tlnlp.models.loading import (
    HubUnreachableError,
    is_hub_reachable,
    load_classifier,
    load_tokenizer,
    resolve_model_path,
)

__all__ = [
    "AdapterSet",
    "find_head_modules",
    "find_target_modules",
    "is_adapter_dir",
    "load_adapter_model",
    "merge_adapter",
    "peft_task_type",
    "LAYER_SPLITTERS",
    "HubUnreachableError",
    "LayerGroup",
    "cache_root",
    "convert_gguf",
    "count_parameters",
    "find_blocks",
    "get_layer_groups",
    "is_hub_reachable",
    "load_classifier",
    "load_tokenizer",
    "resolve_model_path",
    "set_requires_grad",
    "unwrap_model",
]
