"""PEFT configs for the adapter methods, and wrapping a model with one.

Each adapter method builds PEFT's own config class from the ``MethodArgs`` adapter options and wraps the model
with ``peft.get_peft_model``. Whatever the method, the PEFT task type follows the model's head (sequence
classification, question answering, token classification, causal LM), the task head is trained and saved with
the adapter (``modules_to_save``), target modules are found for the architecture unless ``--target_modules``
names them, and ``adapter_config.json`` names the base model by its public name (a bundled model's Hub id).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES
from transformers.pytorch_utils import Conv1D

from tlnlp.models.adapter_io import set_base_model_name
from tlnlp.models.adapters import (
    find_feedforward_modules,
    find_head_modules,
    find_target_modules,
    fix_prefix_tuning,
    linear_module_names,
    peft_task_type,
    restrict_to_blocks,
)
from tlnlp.models.layers import find_blocks, unwrap_model

__all__ = ["build_peft_config", "needs_left_padding", "wrap_with_adapter"]

logger = logging.getLogger(__name__)


def _check_targets(model: torch.nn.Module, targets: list[str]) -> None:
    names = [name for name, _ in model.named_modules() if name]
    unknown = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unknown:
        linears = ", ".join(dict.fromkeys(linear_module_names(model)))
        raise ValueError(f"target_modules={targets!r}: {unknown} match no module of {type(model).__name__}. "
                         f"Its blocks' linear layers are: {linears}.")


def _targets(model: torch.nn.Module, args: Any, method: str) -> list[str] | str:
    if args.target_modules:
        _check_targets(model, list(args.target_modules))
        return list(args.target_modules)
    return restrict_to_blocks(model, find_target_modules(model, method))


def _common(model: torch.nn.Module, args: Any) -> dict[str, Any]:
    heads = find_head_modules(model)
    extra = list(args.modules_to_save or [])
    if extra:
        _check_targets(model, extra)
    saved = list(dict.fromkeys(heads + extra))
    return {"task_type": peft_task_type(model), "modules_to_save": saved or None}


def _prompt_dims(model: torch.nn.Module) -> dict[str, Any]:
    """Sizes PEFT's prompt-learning configs need, read through the config's attribute aliases.

    PEFT looks them up in ``config.to_dict()``, which misses aliased names (DistilBERT's ``n_heads``...).
    """
    inner = unwrap_model(model)
    config = inner.config
    dims: dict[str, Any] = {"token_dim": inner.get_input_embeddings().embedding_dim,
                            "num_layers": getattr(config, "num_hidden_layers", None),
                            "num_attention_heads": getattr(config, "num_attention_heads", None)}
    if dims["num_layers"] is None:
        found = find_blocks(inner.base_model)
        dims["num_layers"] = len(found[1]) if found else None
    return {k: v for k, v in dims.items() if v is not None}


def _has_conv1d(model: torch.nn.Module) -> bool:
    """GPT-2-style models store projections as transformers Conv1D (weights transposed: fan_in_fan_out)."""
    return any(isinstance(m, Conv1D) for m in model.modules())


def _check_module_types(model: torch.nn.Module, method: str) -> None:
    if method in ("loha", "lokr") and _has_conv1d(model):
        raise ValueError(f"method={method!r} cannot adapt {type(model).__name__}: its projections are "
                         "transformers Conv1D layers, which PEFT's loha/lokr do not support. Use lora, dora, "
                         "adalora or ia3.")


def _low_rank(model: torch.nn.Module, args: Any, method: str) -> Any:
    from peft import (  # deferred: peft is heavy; imported when an adapter is used
        AdaLoraConfig,
        LoHaConfig,
        LoKrConfig,
        LoraConfig,
    )

    _check_module_types(model, method)
    common = {**_common(model, args), "target_modules": _targets(model, args, method)}
    if method in ("lora", "dora", "adalora"):
        common["fan_in_fan_out"] = _has_conv1d(model)
    if method in ("lora", "dora"):
        return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                          use_rslora=args.use_rslora, use_dora=method == "dora", **common)
    if method == "adalora":
        # total_step is set to the run's real number of steps when training starts (AdaLoraBudgetCallback)
        placeholder = args.adalora_tinit + args.adalora_tfinal + 1
        return AdaLoraConfig(init_r=args.adalora_init_r, target_r=args.adalora_target_r, tinit=args.adalora_tinit,
                             tfinal=args.adalora_tfinal, deltaT=args.adalora_delta_t, total_step=placeholder,
                             lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, **common)
    config_class = LoHaConfig if method == "loha" else LoKrConfig
    return config_class(r=args.lora_r, alpha=args.lora_alpha, rank_dropout=args.lora_dropout, **common)


def _ia3(model: torch.nn.Module, args: Any) -> Any:
    from peft import IA3Config  # deferred: peft is heavy; imported when an adapter is used

    targets = _targets(model, args, "ia3")
    if args.ia3_feedforward_modules:
        feedforward = list(args.ia3_feedforward_modules)
        if isinstance(targets, list):
            outside = [f for f in feedforward if f not in targets]
            if outside:
                raise ValueError(f"ia3_feedforward_modules={feedforward!r}: {outside} are not among "
                                 f"target_modules={targets!r}; feed-forward modules must be targets too.")
    else:
        feedforward = find_feedforward_modules(model, targets if isinstance(targets, list) else None)
    # a target regex limited to the blocks needs a feed-forward regex of the same kind
    feedforward_arg = restrict_to_blocks(model, feedforward, force=True) if isinstance(targets, str) else feedforward
    return IA3Config(target_modules=targets, feedforward_modules=feedforward_arg, fan_in_fan_out=_has_conv1d(model),
                     **_common(model, args))


def _prompt(model: torch.nn.Module, args: Any, method: str) -> Any:
    from peft import (  # deferred: peft is heavy; imported when an adapter is used
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
    )

    common = {**_common(model, args), **_prompt_dims(model), "num_virtual_tokens": args.num_virtual_tokens}
    if method == "prompt_tuning":
        if args.prompt_tuning_init_text:
            return PromptTuningConfig(prompt_tuning_init="TEXT", prompt_tuning_init_text=args.prompt_tuning_init_text,
                                      tokenizer_name_or_path=unwrap_model(model).name_or_path, **common)
        return PromptTuningConfig(prompt_tuning_init="RANDOM", **common)
    hidden = args.encoder_hidden_size or common["token_dim"]
    if method == "prefix_tuning":
        return PrefixTuningConfig(prefix_projection=args.prefix_projection, encoder_hidden_size=hidden, **common)
    return PromptEncoderConfig(encoder_hidden_size=hidden,
                               encoder_reparameterization_type=args.encoder_reparameterization_type, **common)


def build_peft_config(model: torch.nn.Module, method_args: Any) -> Any:
    """PEFT's config object for ``method_args.method``, filled from the adapter options and the model.

    Args:
        model: The transformers model to adapt (not yet wrapped).
        method_args: The method name and adapter options.

    Returns:
        A ``peft`` config (``LoraConfig``, ``AdaLoraConfig``, ``IA3Config``, ``LoHaConfig``, ``LoKrConfig``,
        ``PromptTuningConfig``, ``PrefixTuningConfig`` or ``PromptEncoderConfig``).

    Raises:
        ValueError: Target modules that match nothing, or options that contradict each other.
    """
    method = method_args.method
    if method == "ia3":
        return _ia3(model, method_args)
    if method in ("prompt_tuning", "prefix_tuning", "p_tuning"):
        return _prompt(model, method_args, method)
    return _low_rank(model, method_args, method)


def wrap_with_adapter(model: torch.nn.Module, method_args: Any) -> torch.nn.Module:
    """Wrap ``model`` with the adapter named by ``method_args.method``; only the adapter and head train.

    Args:
        model: A freshly loaded transformers model with its task head.
        method_args: Method name and adapter options.

    Returns:
        The PEFT model (the Trainer's default optimizer covers its trainable parameters).
    """
    from peft import get_peft_model  # deferred: peft is heavy; imported when an adapter is used

    base_name = str(getattr(unwrap_model(model), "name_or_path", "") or "")
    config = build_peft_config(model, method_args)
    peft_model = get_peft_model(model, config)
    if config.modules_to_save:  # PEFT appends its own head names (classifier, score): keep those that exist, once
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        config.modules_to_save = [m for m in dict.fromkeys(config.modules_to_save) if m.rsplit(".", 1)[-1] in present]
    if method_args.method == "prefix_tuning":
        fix_prefix_tuning(peft_model)
    if base_name:
        set_base_model_name(peft_model, base_name)
    logger.info("Adapter %s (task %s): targets %s; trained and saved in full: %s", method_args.method,
                config.task_type, getattr(config, "target_modules", "-"), config.modules_to_save or "-")
    return peft_model


def needs_left_padding(model: Any) -> bool:
    """True for a decoder-only classifier under prompt tuning or P-tuning.

    PEFT feeds such a model embeddings (virtual tokens + text), not token ids, so the classifier cannot find the
    last real token and scores the last position; with right padding that is padding for every row but the longest.
    Padding on the left puts the last real token there. (Prefix tuning keeps the ids and needs nothing.)
    """
    peft_config = getattr(model, "peft_config", None)
    if not peft_config:
        return False
    config = next(iter(peft_config.values()))
    if not getattr(config, "is_prompt_learning", False) or config.peft_type == "PREFIX_TUNING":
        return False
    if config.task_type != "SEQ_CLS":
        return False
    base = unwrap_model(model).config
    return not getattr(base, "is_encoder_decoder", False) and base.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
