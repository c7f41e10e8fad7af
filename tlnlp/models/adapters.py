"""PEFT adapters on any architecture: target modules, task heads, the base model's public name, prefix fix-up.

Discovery works from the model itself: the transformer blocks come from :func:`tlnlp.models.find_blocks`,
target modules from PEFT's per-architecture tables when they fit the model and otherwise from the names and
shapes of the linear layers inside a block, and the task head from the children of the model that lie outside
its backbone (``classifier``, ``score``, ``qa_outputs``, DistilBERT's ``pre_classifier``...).
Loading, merging and switching saved adapters live in :mod:`tlnlp.models.adapter_io`.
"""

from __future__ import annotations

import inspect
import logging
import re
import types
from pathlib import Path
from typing import Any

import torch
from transformers.pytorch_utils import Conv1D

from tlnlp.assets import BUNDLED_MODELS, BUNDLED_PREFIX, AssetError, bundled_model_path
from tlnlp.models.layers import find_blocks, unwrap_model

__all__ = [
    "find_feedforward_modules",
    "find_head_modules",
    "find_target_modules",
    "fix_prefix_tuning",
    "linear_module_names",
    "peft_task_type",
    "public_base_name",
    "restrict_to_blocks",
]

logger = logging.getLogger(__name__)

#: Suffix of a transformers model class -> PEFT task type. Longest suffixes are tried first.
_TASK_TYPES = {
    "ForSequenceClassification": "SEQ_CLS",
    "ForQuestionAnswering": "QUESTION_ANS",
    "ForTokenClassification": "TOKEN_CLS",
    "ForCausalLM": "CAUSAL_LM",
    "LMHeadModel": "CAUSAL_LM",
    "ForConditionalGeneration": "SEQ_2_SEQ_LM",
    "Model": "FEATURE_EXTRACTION",
}
#: Task types whose head is new for the task and must be trained and saved with the adapter.
_NEW_HEAD_TASKS = ("SEQ_CLS", "QUESTION_ANS", "TOKEN_CLS")

_QUERY_VALUE = {"query", "value", "q_proj", "v_proj", "q_lin", "v_lin", "q", "v", "wq", "wv", "query_proj",
                "value_proj"}
_KEY_VALUE = {"key", "value", "k_proj", "v_proj", "k_lin", "v_lin", "k", "v", "wk", "wv", "key_proj", "value_proj"}
_FUSED_QKV = {"c_attn", "qkv", "query_key_value", "wqkv", "qkv_proj", "in_proj", "w_pack"}


def peft_task_type(model: torch.nn.Module) -> str | None:
    """The PEFT task type that matches the model's class (its head).

    Args:
        model: A transformers model, possibly wrapped.

    Returns:
        ``"SEQ_CLS"``, ``"QUESTION_ANS"``, ``"TOKEN_CLS"``, ``"CAUSAL_LM"``, ``"SEQ_2_SEQ_LM"``,
        ``"FEATURE_EXTRACTION"`` (a bare backbone), or None (e.g. a masked-LM head: PEFT's generic model).
    """
    name = type(unwrap_model(model)).__name__
    for suffix in sorted(_TASK_TYPES, key=len, reverse=True):
        if name.endswith(suffix):
            return _TASK_TYPES[suffix]
    return None


def _is_linear(module: torch.nn.Module) -> bool:
    return isinstance(module, (torch.nn.Linear, Conv1D))


def _in_out(module: torch.nn.Module) -> tuple[int, int]:
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    return module.weight.shape[0], module.weight.shape[1]  # transformers' Conv1D stores (in, out)


def _blocks(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    inner = unwrap_model(model)
    backbone = getattr(inner, "base_model", inner)
    found = find_blocks(backbone)
    if found is None:
        raise ValueError(f"Could not find the transformer blocks of {type(inner).__name__}; give "
                         "--target_modules explicitly (names of its linear layers).")
    prefix = next(name for name, module in inner.named_modules() if module is backbone)
    return (f"{prefix}.{found[0]}" if prefix else found[0]), found[1]


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Relative names of the linear layers inside one transformer block (e.g. ``attention.self.query``).

    Args:
        model: A transformers model, possibly wrapped.

    Returns:
        The names, in registration order.
    """
    _, blocks = _blocks(model)
    return [name for name, module in blocks[0].named_modules() if name and _is_linear(module)]


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _peft_table(method: str, model_type: str | None) -> list[str] | None:
    from peft.utils import constants  # deferred: peft is heavy; imported when an adapter is used

    table_name = "IA3" if method == "ia3" else "LORA"
    table = getattr(constants, f"TRANSFORMERS_MODELS_TO_{table_name}_TARGET_MODULES_MAPPING", {})
    names = table.get(model_type) if model_type else None
    return list(names) if names else None


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def find_target_modules(model: torch.nn.Module, method: str = "lora") -> list[str]:
    """Default adapter target modules for the model's architecture.

    PEFT's table for the ``model_type`` is used when every name in it exists in the model. Otherwise: for
    low-rank methods the attention query and value projections (or the fused QKV projection), for ``ia3`` the
    key and value projections plus the feed-forward output layers; failing that, every linear layer of a block.

    Args:
        model: A transformers model, possibly wrapped.
        method: ``"ia3"`` or any low-rank method (``"lora"``, ``"dora"``...).

    Returns:
        Module name suffixes, as PEFT's ``target_modules`` takes them.
    """
    linears = linear_module_names(model)
    model_type = getattr(getattr(unwrap_model(model), "config", None), "model_type", None)
    table = _peft_table(method, model_type)
    if table and all(any(_matches(name, target) for name in linears) for target in table):
        return table
    leaves = list(dict.fromkeys(_leaf(name) for name in linears))
    wanted = _KEY_VALUE if method == "ia3" else _QUERY_VALUE
    chosen = [leaf for leaf in leaves if leaf.lower() in wanted]
    if not chosen:
        chosen = [leaf for leaf in leaves if leaf.lower() in _FUSED_QKV]
    if method == "ia3" and chosen:
        chosen += [f for f in find_feedforward_modules(model) if f not in chosen]
    if not chosen:
        logger.info("No attention projections recognised in %s; targeting every linear layer of its blocks.",
                    type(unwrap_model(model)).__name__)
        chosen = leaves
    return chosen


def find_feedforward_modules(model: torch.nn.Module, targets: list[str] | None = None) -> list[str]:
    """The feed-forward output layers of a block (IA3 scales their input rather than their output).

    PEFT's IA3 table is used when it fits; otherwise a block's linear layers that shrink the width (input wider
    than output), which is what a feed-forward down projection does.

    Args:
        model: A transformers model, possibly wrapped.
        targets: When given, only feed-forward names among (or matching) these targets are returned.

    Returns:
        Module names (suffixes).
    """
    from peft.utils import constants  # deferred: peft is heavy; imported when an adapter is used

    _, blocks = _blocks(model)
    linears = linear_module_names(model)
    model_type = getattr(getattr(unwrap_model(model), "config", None), "model_type", None)
    table = constants.TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING.get(model_type or "")
    if table and all(any(_matches(name, target) for name in linears) for target in table):
        found = list(table)
    else:
        block = blocks[0]
        found = [name for name in linears if (sizes := _in_out(block.get_submodule(name)))[0] > sizes[1]]
    if targets is not None:
        found = [f for f in found if any(_matches(f, t) or _matches(t, f) for t in targets)]
    return found


def restrict_to_blocks(model: torch.nn.Module, targets: list[str], force: bool = False) -> list[str] | str:
    """Keep the targets inside the transformer blocks.

    PEFT matches a target name as a suffix anywhere in the model, so ``dense`` would also hit BERT's pooler and
    a RoBERTa head. When a name matches a module outside the blocks, a regular expression that only matches
    inside them is returned instead of the list.

    Args:
        model: The transformers model (not yet wrapped by PEFT).
        targets: Name suffixes.
        force: Return the regular expression even when the names match nothing outside the blocks.

    Returns:
        ``targets`` unchanged, or an equivalent regular expression limited to the blocks.
    """
    prefix, _ = _blocks(model)
    outside = [name for name, module in model.named_modules()
               if not name.startswith(prefix + ".") and any(_matches(name, t) for t in targets)]
    if not outside and not force:
        return list(targets)
    alternatives = "|".join(re.escape(t) for t in targets)
    if outside:
        logger.info("Target names also match %s outside the transformer blocks; limiting them to the blocks.",
                    ", ".join(outside[:4]))
    return rf"{re.escape(prefix)}\.\d+\.(?:.*\.)?(?:{alternatives})"


def find_head_modules(model: torch.nn.Module) -> list[str]:
    """Names of the task-head modules, which are trained in full and saved with the adapter.

    The head is what :func:`tlnlp.models.get_layer_groups` calls the head: every child of the model outside
    its backbone that holds parameters (``classifier``, ``score``, ``qa_outputs``, DistilBERT's
    ``pre_classifier``...) and the backbone's own modules after its blocks (BERT's ``pooler``, GPT-2's
    ``ln_f``, Llama's final ``norm``), which feed only the head. Names are dotted paths from the model's root,
    since PEFT matches them as suffixes (``norm`` alone would also match every block's norms).
    Language-model heads (pretrained, usually tied to the input embeddings) are not included.

    Args:
        model: A transformers model (not yet wrapped by PEFT).

    Returns:
        Module names, input side first; empty for language models and bare backbones.
    """
    if peft_task_type(model) not in _NEW_HEAD_TASKS:
        return []
    inner = unwrap_model(model)
    backbone = getattr(inner, "base_model", None)
    heads = [name for name, child in inner.named_children()
             if child is not backbone and any(True for _ in child.parameters())]
    tail: list[str] = []
    if isinstance(backbone, torch.nn.Module):
        prefix = next(name for name, module in inner.named_modules() if module is backbone)
        blocks = find_blocks(backbone)
        seen_blocks = False
        for name, child in backbone.named_children():
            if blocks is not None and (child is blocks[1] or blocks[0].startswith(name + ".") or name == blocks[0]):
                seen_blocks = True
            elif seen_blocks and any(True for _ in child.parameters()):
                tail.append(f"{prefix}.{name}" if prefix else name)
    return tail + heads


def public_base_name(name_or_path: str) -> str:
    """The name to record as an adapter's base model: a bundled model's Hub id, else the name as given.

    Args:
        name_or_path: ``bundled:<name>``, the folder of a bundled model, a Hub id or a local folder.

    Returns:
        The Hub id of a bundled model (``bundled:minilm`` and its folder both give
        ``sentence-transformers/all-MiniLM-L6-v2``); anything else unchanged.
    """
    name = str(name_or_path)
    if name.startswith(BUNDLED_PREFIX) and name[len(BUNDLED_PREFIX):] in BUNDLED_MODELS:
        return BUNDLED_MODELS[name[len(BUNDLED_PREFIX):]].hub_id
    path = Path(name).expanduser()
    if path.is_dir():
        for key, model in BUNDLED_MODELS.items():
            if any(path.name == item.sha256 for item in model.files):  # a converted copy (GGUF), cached by sha256
                return model.hub_id
            try:
                if bundled_model_path(key, verify=False).resolve() == path.resolve():
                    return model.hub_id
            except (AssetError, OSError):
                continue
    return name


def _prefix_forward_with_cache(self: Any, **kwargs: Any) -> Any:
    """PEFT's prefix-tuning forward for models whose key/value cache argument is called ``cache``."""
    input_ids, inputs_embeds = kwargs.get("input_ids"), kwargs.get("inputs_embeds")
    batch_size = (input_ids if input_ids is not None else inputs_embeds).shape[0]
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    kwargs["cache"] = self.get_prompt(batch_size)
    return self.base_model(**kwargs)


def fix_prefix_tuning(peft_model: Any) -> None:
    """Let prefix tuning reach models whose forward names the key/value cache ``cache``.

    PEFT hands the learned prefix over as ``past_key_values``; recent transformers models take it as
    ``cache``. This rebinds the PEFT model's prefix forward (classification, QA, token classification), or
    renames the argument on its way into a language model, so that the prefix arrives. Models that take
    neither get a clear error.

    Args:
        peft_model: A PEFT model whose active adapter is prefix tuning.

    Raises:
        ValueError: The backbone accepts no key/value cache, so prefixes cannot be injected.
    """
    base = peft_model.base_model
    params = inspect.signature(base.forward).parameters
    if "past_key_values" in params:
        return
    backbone = unwrap_model(base).base_model
    passes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "cache" not in params and not ("cache" in inspect.signature(backbone.forward).parameters and passes_kwargs):
        raise ValueError(f"prefix_tuning: {type(backbone).__name__} takes no key/value cache, so learned "
                         "prefixes cannot be injected. Use --method prompt_tuning, p_tuning or lora instead.")
    if hasattr(type(peft_model), "_prefix_tuning_forward"):  # classification, QA, token classification
        peft_model._prefix_tuning_forward = types.MethodType(_prefix_forward_with_cache, peft_model)
    else:  # language models: PEFT passes the prefix to the model's forward; rename it on the way in
        base.register_forward_pre_hook(_rename_past_key_values, with_kwargs=True)


def _rename_past_key_values(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict]:
    if "past_key_values" in kwargs and kwargs.get("cache") is None:
        kwargs["cache"] = kwargs.pop("past_key_values")
    return args, kwargs
