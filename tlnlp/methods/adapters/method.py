"""The PEFT adapter methods: lora, dora, adalora, ia3, prompt_tuning, prefix_tuning, p_tuning, loha, lokr.

Each is one :class:`AdapterMethod` registered under its name; they share the adapter options and every hook:
the model is wrapped by PEFT (only the adapter and the task head train), AdaLoRA gets its budget callback and
full-rank checkpoints, prompt-tuned decoder classifiers pad on the left, the saved folder gets
``task_config.json`` (and ``merged/`` with ``--merge_adapter``), the card describes the adapter, and a saved
adapter folder reloads for inference.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import DataCollatorWithPadding, TrainerCallback

from tlnlp.methods.adapters.adalora import (
    AdaLoraBudgetCallback,
    adalora_checkpoint_load,
    adalora_configs,
    adalora_full_rank_save,
)
from tlnlp.methods.adapters.options import ADAPTER_METHODS, AdapterOptions, check_adapter_options
from tlnlp.methods.adapters.outputs import adapter_facts, adapter_usage, is_peft_model, reload_adapter, write_merged
from tlnlp.methods.adapters.peft_config import needs_left_padding, wrap_with_adapter
from tlnlp.methods.base import METHODS, CardParts, Method
from tlnlp.models.adapter_io import ADAPTER_CONFIG, save_task_config, set_base_model_name

__all__ = ["ADAPTER_DESCRIPTIONS", "AdapterMethod"]

logger = logging.getLogger(__name__)

_HEAD = " The backbone stays frozen; the {head} is trained in full and saved with the adapter."
#: Card text for each adapter method.
ADAPTER_DESCRIPTIONS = {
    "lora": "LoRA (Hu et al. 2021): trainable low-rank updates B·A are added to the chosen projection weights." + _HEAD,
    "dora": "DoRA (Liu et al. 2024): LoRA on the direction of each weight plus a trainable magnitude vector." + _HEAD,
    "adalora": "AdaLoRA (Zhang et al. 2023): low-rank updates in SVD form whose ranks are pruned during training "
               "towards a budget, keeping rank where it matters most." + _HEAD,
    "ia3": "IA3 (Liu et al. 2022): learned vectors rescale the attention keys and values and the feed-forward "
           "activations." + _HEAD,
    "prompt_tuning": "Prompt tuning (Lester et al. 2021): trainable virtual-token embeddings are prepended to the "
                     "input." + _HEAD,
    "prefix_tuning": "Prefix tuning (Li & Liang 2021): trainable key/value prefixes are prepended in every attention "
                     "layer." + _HEAD,
    "p_tuning": "P-tuning (Liu et al. 2021): virtual-token embeddings produced by a small prompt encoder are "
                "prepended to the input." + _HEAD,
    "loha": "LoHa: low-rank Hadamard-product updates of the chosen projection weights." + _HEAD,
    "lokr": "LoKr: low-rank Kronecker-product updates of the chosen projection weights." + _HEAD,
}


class AdapterMethod(Method):
    """One PEFT adapter method; every adapter method is an instance under its own name.

    Args:
        name: The ``--method`` value (one of :data:`~tlnlp.methods.adapters.options.ADAPTER_METHODS`).
        description: The card's paragraph on what trains.
    """

    options = AdapterOptions

    def __init__(self, name: str, description: str) -> None:
        self.name = name  # type: ignore[misc]  # one class, one instance per adapter method
        self.description = description  # type: ignore[misc]

    def validate(self, args: Any) -> None:
        """Check the adapter options (called once for all adapter methods, whatever ``--method`` is)."""
        check_adapter_options(args)

    def prepare(self, model: torch.nn.Module, args: Any) -> torch.nn.Module:
        """Wrap ``model`` with this adapter; only the adapter and the task head train."""
        return wrap_with_adapter(model, args)

    def callbacks(self, model: torch.nn.Module, args: Any) -> list[TrainerCallback]:
        """AdaLoRA's budget scheduler (sets the run's steps, reallocates ranks after each optimizer step)."""
        return [AdaLoraBudgetCallback()] if adalora_configs(model) else []

    def setup_trainer(self, trainer: Any, args: Any) -> None:
        """Pad on the left for a prompt-tuned decoder classifier (the tokenizer is saved that way)."""
        tokenizer = trainer.processing_class
        if (isinstance(trainer.data_collator, DataCollatorWithPadding) and needs_left_padding(trainer.model)
                and tokenizer.padding_side != "left"):
            logger.info("Prompt tuning on a decoder-only classifier: padding on the left, so that the position the "
                        "classifier reads is the last real token (the tokenizer is saved that way).")
            tokenizer.padding_side = "left"

    def checkpoint_save(self, trainer: Any, args: Any, model: Any,
                        folder_of: Callable[[], str]) -> contextlib.AbstractContextManager[Any]:
        """AdaLoRA: adapters at full rank plus the rank budget's state, for an exact resume."""
        return adalora_full_rank_save(trainer.model, folder_of, write=trainer.args.should_save)

    def checkpoint_load(self, trainer: Any, args: Any, model: Any,
                        checkpoint: str | Path) -> contextlib.AbstractContextManager[Any]:
        """AdaLoRA: load a full-rank checkpoint, then its own rank pattern and allocator statistics."""
        return adalora_checkpoint_load(model, checkpoint)

    def before_save(self, trainer: Any, args: Any, base_model: str) -> None:
        """Record the base model under its public name (a bundled model's Hub id) in ``adapter_config.json``."""
        if is_peft_model(trainer.model):
            set_base_model_name(trainer.model, base_model)

    def after_save(self, trainer: Any, args: Any, out: Path) -> bool:
        """Write ``task_config.json`` (labels, problem type) next to the adapter; the saved weights are one."""
        if not is_peft_model(trainer.model):
            return False
        save_task_config(trainer.model, out)
        return True

    def save_outputs(self, trainer: Any, args: Any, out: Path, datasets: Any) -> dict[str, float]:
        """With ``--merge_adapter``: ``merged/`` and how far its logits are from the adapter model's."""
        if not (args.merge_adapter and is_peft_model(trainer.model)):
            return {}
        return write_merged(trainer, datasets, Path(out))

    def card_parts(self, args: Any, out: Path, task: Any, params: dict[str, Any]) -> CardParts:
        """The adapter's description, its settings among the parameter facts, how to load it, and peft tags."""
        if not (Path(out) / ADAPTER_CONFIG).is_file():
            return super().card_parts(args, out, task, params)
        usage = adapter_usage(Path(out), getattr(task, "usage_example", None))
        return CardParts(description=self.describe(task), params={**params, **adapter_facts(Path(out))},
                         sections={"Using this adapter": usage}, tags=["peft", "adapter"])

    def reload(self, folder: Path) -> tuple[Any, Any] | None:
        """A saved adapter folder: base model + adapter + head with the run's label names."""
        return reload_adapter(folder)


for _name in ADAPTER_METHODS:
    METHODS.register(_name, AdapterMethod(_name, ADAPTER_DESCRIPTIONS[_name]))
