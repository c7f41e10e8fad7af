"""PEFT adapters as transfer methods: lora, dora, adalora, ia3, prompt_tuning, prefix_tuning, p_tuning, loha, lokr.

Each method builds PEFT's own config class from the ``MethodArgs`` adapter options and wraps the model with
``peft.get_peft_model``. Whatever the method, the PEFT task type follows the model's head (sequence
classification, question answering, token classification, causal LM), the task head is trained and saved with
the adapter (``modules_to_save``), target modules are found for the architecture unless ``--target_modules``
names them, and ``adapter_config.json`` names the base model by its public name (a bundled model's Hub id).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import TrainerCallback

from tlnlp.methods.base import METHODS, MethodResult, log_trainable
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

if TYPE_CHECKING:
    from tlnlp.config.args import MethodArgs

__all__ = ["ADALORA_STATE_NAME", "AdaLoraBudgetCallback", "adalora_checkpoint_load", "adalora_full_rank_save",
           "adapter_callbacks",
           "build_peft_config", "load_adalora_state", "needs_left_padding", "wrap_with_adapter"]

#: File in a checkpoint folder with AdaLoRA's rank pattern and importance statistics (for an exact resume).
ADALORA_STATE_NAME = "adalora_state.safetensors"

logger = logging.getLogger(__name__)


def _check_targets(model: torch.nn.Module, targets: list[str]) -> None:
    names = [name for name, _ in model.named_modules() if name]
    unknown = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unknown:
        linears = ", ".join(dict.fromkeys(linear_module_names(model)))
        raise ValueError(f"target_modules={targets!r}: {unknown} match no module of {type(model).__name__}. "
                         f"Its blocks' linear layers are: {linears}.")


def _targets(model: torch.nn.Module, args: MethodArgs, method: str) -> list[str] | str:
    if args.target_modules:
        _check_targets(model, list(args.target_modules))
        return list(args.target_modules)
    return restrict_to_blocks(model, find_target_modules(model, method))


def _common(model: torch.nn.Module, args: MethodArgs) -> dict[str, Any]:
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
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) for m in model.modules())


def _check_module_types(model: torch.nn.Module, method: str) -> None:
    if method in ("loha", "lokr") and _has_conv1d(model):
        raise ValueError(f"method={method!r} cannot adapt {type(model).__name__}: its projections are "
                         "transformers Conv1D layers, which PEFT's loha/lokr do not support. Use lora, dora, "
                         "adalora or ia3.")


def _low_rank(model: torch.nn.Module, args: MethodArgs, method: str) -> Any:
    from peft import AdaLoraConfig, LoHaConfig, LoKrConfig, LoraConfig

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


def _ia3(model: torch.nn.Module, args: MethodArgs) -> Any:
    from peft import IA3Config

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


def _prompt(model: torch.nn.Module, args: MethodArgs, method: str) -> Any:
    from peft import PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig

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


def build_peft_config(model: torch.nn.Module, method_args: MethodArgs) -> Any:
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


def wrap_with_adapter(model: torch.nn.Module, method_args: MethodArgs) -> MethodResult:
    """Wrap ``model`` with the adapter named by ``method_args.method``; only the adapter and head train.

    Args:
        model: A freshly loaded transformers model with its task head.
        method_args: Method name and adapter options.

    Returns:
        ``MethodResult(peft_model, None)``: the Trainer's default optimizer covers the trainable parameters.
    """
    from peft import get_peft_model

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
    log_trainable(peft_model, method_args.method)
    return MethodResult(peft_model, None)


class AdaLoraBudgetCallback(TrainerCallback):
    """AdaLoRA's rank budgeting under the Trainer: sets the run's total steps, reallocates ranks every step."""

    @staticmethod
    def _configs(model: Any) -> list[Any]:
        configs = getattr(model, "peft_config", {}) or {}
        return [c for c in configs.values() if str(c.peft_type).endswith("ADALORA")]

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Record the real number of optimisation steps in the AdaLoRA config (its schedule needs it)."""
        for config in self._configs(model):
            if config.tinit >= state.max_steps - config.tfinal:
                raise ValueError(f"adalora_tinit={config.tinit} + adalora_tfinal={config.tfinal} leave no rank "
                                 f"budgeting phase in a run of {state.max_steps} steps; lower them.")
            config.total_step = state.max_steps

    def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """After each optimizer step (gradients still present): prune ranks towards the budget."""
        if self._configs(model):
            model.base_model.update_and_allocate(state.global_step + 1)


_ALLOCATOR_STATS = ("ipt", "exp_avg_ipt", "exp_avg_unc")


@contextlib.contextmanager
def adalora_full_rank_save(model: Any, folder_of: Callable[[], str], write: bool = True) -> Iterator[None]:
    """Around a Trainer checkpoint: save AdaLoRA's adapters at full rank, and its budgeting state beside them.

    PEFT saves AdaLoRA weights cut to the current rank pattern, which a resumed run (whose adapters are still at
    the initial rank until the pattern is restored) cannot load, and the rank allocator's importance averages are
    not saved at all. Inside this context the pattern is hidden from the save, so the checkpoint keeps every rank
    (pruned ones are masked to zero, as in training), and :data:`ADALORA_STATE_NAME` records the pattern and the
    allocator's statistics for :func:`load_adalora_state`. Other models are saved as usual.

    Args:
        model: The model being checkpointed (possibly wrapped).
        folder_of: Returns the checkpoint folder once it is written.
        write: Whether this process writes files (the main process).
    """
    peft_model = unwrap_model(model, keep_peft=True)
    base = getattr(peft_model, "base_model", None)
    configs = AdaLoraBudgetCallback._configs(peft_model)
    if not configs or not hasattr(base, "rankallocator"):
        yield
        return
    config = configs[0]
    pattern = config.rank_pattern
    config.rank_pattern = None
    try:
        yield
    finally:
        config.rank_pattern = pattern
    if not write:
        return
    import json

    from safetensors.torch import save_file

    allocator = base.rankallocator
    tensors = {f"{stat}::{name}": value.detach().contiguous().cpu()
               for stat in _ALLOCATOR_STATS for name, value in getattr(allocator, stat).items()}
    save_file(tensors, str(Path(folder_of()) / ADALORA_STATE_NAME),
              metadata={"rank_pattern": json.dumps(pattern)})


@contextlib.contextmanager
def adalora_checkpoint_load(model: Any, checkpoint: str | Path) -> Iterator[None]:
    """Around loading a checkpoint written with :func:`adalora_full_rank_save` (a resume, or the best model).

    PEFT would first cut the in-memory adapters to the current rank pattern, and the full-rank checkpoint would
    then not fit; inside this context the pattern is cleared, and afterwards the checkpoint's own pattern and
    allocator statistics are restored (:func:`load_adalora_state`). Other models and checkpoints without the
    state file load as usual.

    Args:
        model: The model being loaded into (possibly wrapped).
        checkpoint: The checkpoint folder.
    """
    peft_model = unwrap_model(model, keep_peft=True)
    configs = AdaLoraBudgetCallback._configs(peft_model)
    if not configs or not (Path(checkpoint) / ADALORA_STATE_NAME).is_file():
        yield
        return
    configs[0].rank_pattern = None  # the checkpoint holds every rank; its own pattern comes from the state file
    yield
    load_adalora_state(peft_model, checkpoint)


def load_adalora_state(model: Any, checkpoint: str | Path) -> bool:
    """Restore the rank pattern and allocator statistics written by :func:`adalora_full_rank_save`.

    Args:
        model: The model the Trainer resumes (its adapters already loaded from ``checkpoint``).
        checkpoint: The checkpoint folder.

    Returns:
        True when AdaLoRA state was restored; False for other models or a checkpoint without the file.
    """
    import json

    from safetensors import safe_open

    path = Path(checkpoint) / ADALORA_STATE_NAME
    peft_model = unwrap_model(model, keep_peft=True)
    configs = AdaLoraBudgetCallback._configs(peft_model)
    if not configs or not path.is_file():
        return False
    allocator = peft_model.base_model.rankallocator
    device = next(peft_model.parameters()).device
    with safe_open(str(path), framework="pt") as handle:
        configs[0].rank_pattern = json.loads(handle.metadata()["rank_pattern"])
        for stat in _ALLOCATOR_STATS:
            setattr(allocator, stat, {})
        for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
            stat, name = key.split("::", 1)
            getattr(allocator, stat)[name] = handle.get_tensor(key).to(device)
    logger.info("Resumed AdaLoRA's rank budget from %s (%d ranked modules).", path,
                len(configs[0].rank_pattern or {}))
    return True


def adapter_callbacks(model: Any) -> list[TrainerCallback]:
    """Trainer callbacks an adapter needs (AdaLoRA's budget scheduler); empty for every other model.

    Args:
        model: The model to be trained, possibly wrapped by PEFT.

    Returns:
        The callbacks to add to the Trainer.
    """
    return [AdaLoraBudgetCallback()] if AdaLoraBudgetCallback._configs(model) else []


def needs_left_padding(model: Any) -> bool:
    """True for a decoder-only classifier under prompt tuning or P-tuning.

    PEFT feeds such a model embeddings (virtual tokens + text), not token ids, so the classifier cannot find the
    last real token and scores the last position; with right padding that is padding for every row but the longest.
    Padding on the left puts the last real token there. (Prefix tuning keeps the ids and needs nothing.)
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

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


def _method(name: str) -> Any:
    def apply(model: torch.nn.Module, method_args: MethodArgs) -> MethodResult:
        return wrap_with_adapter(model, method_args)

    apply.__name__ = name
    apply.__doc__ = f"PEFT {name}: train the adapter and the task head, keep the backbone frozen."
    return apply


for _name in ("lora", "dora", "adalora", "ia3", "prompt_tuning", "prefix_tuning", "p_tuning", "loha", "lokr"):
    METHODS.register(_name, _method(_name))
