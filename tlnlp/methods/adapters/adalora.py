"""AdaLoRA under the Trainer: the rank budget follows the run, and checkpoints keep every rank for an exact resume.

PEFT's AdaLoRA needs the run's real number of steps and a call to ``update_and_allocate`` after every optimizer
step (:class:`AdaLoraBudgetCallback`). Its checkpoints need two extras, which the adapter methods' checkpoint
hooks add around the Trainer's own save and load: the adapters saved at full rank, and the rank pattern and
the rank allocator's importance statistics in :data:`ADALORA_STATE_NAME`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file
from transformers import TrainerCallback

from tlnlp.models.layers import unwrap_model

__all__ = ["ADALORA_STATE_NAME", "AdaLoraBudgetCallback", "adalora_checkpoint_load", "adalora_configs",
           "adalora_full_rank_save", "load_adalora_state"]

#: File in a checkpoint folder with AdaLoRA's rank pattern and importance statistics (for an exact resume).
ADALORA_STATE_NAME = "adalora_state.safetensors"

logger = logging.getLogger(__name__)


def adalora_configs(model: Any) -> list[Any]:
    """The AdaLoRA adapter configs of a PEFT model (empty for every other model)."""
    configs = getattr(model, "peft_config", {}) or {}
    return [c for c in configs.values() if str(c.peft_type).endswith("ADALORA")]


class AdaLoraBudgetCallback(TrainerCallback):
    """AdaLoRA's rank budgeting under the Trainer: sets the run's total steps, reallocates ranks every step."""

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Record the real number of optimisation steps in the AdaLoRA config (its schedule needs it)."""
        for config in adalora_configs(model):
            if config.tinit >= state.max_steps - config.tfinal:
                raise ValueError(f"adalora_tinit={config.tinit} + adalora_tfinal={config.tfinal} leave no rank "
                                 f"budgeting phase in a run of {state.max_steps} steps; lower them.")
            config.total_step = state.max_steps

    def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """After each optimizer step (gradients still present): prune ranks towards the budget."""
        if adalora_configs(model):
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
    configs = adalora_configs(peft_model)
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
    configs = adalora_configs(peft_model)
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
    path = Path(checkpoint) / ADALORA_STATE_NAME
    peft_model = unwrap_model(model, keep_peft=True)
    configs = adalora_configs(peft_model)
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
