"""Checkpoint averaging: the final weights become the mean of the last K ``checkpoint-*`` folders' weights.

A cheap alternative to an ensemble: one model, one forward pass, often a little better and steadier than the last
checkpoint alone. The Trainer saves the checkpoints (``--save_strategy steps`` or ``epoch``); after training,
:func:`average_last_checkpoints` reads the weights each of the last K holds (``model.safetensors``, its shards, or
an adapter run's ``adapter_model.safetensors``), averages every floating-point tensor (in float32, cast back to
the saved dtype; other tensors are the last checkpoint's) and loads the mean into the Trainer's model, which the
run then evaluates and saves as usual.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tlnlp.ensemble.args import EnsembleError
from tlnlp.methods import METHODS

__all__ = ["AveragedCheckpoints", "average_checkpoints_if_asked", "average_last_checkpoints", "average_tensors",
           "check_checkpoint_averaging", "checkpoint_folders", "checkpoint_weights", "expected_checkpoints"]

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _strategy(train_args: Any) -> str:
    value = train_args.save_strategy
    return str(getattr(value, "value", value))


def expected_checkpoints(train_args: Any) -> int | None:
    """How many checkpoints the Trainer will write, when the settings alone tell (else None).

    ``epoch``: one per started epoch (``num_train_epochs``, when ``max_steps`` does not set the length); ``steps``
    with ``max_steps``: one every ``save_steps`` steps plus the last step's.
    """
    strategy = _strategy(train_args)
    if strategy == "epoch" and train_args.max_steps <= 0:
        return math.ceil(train_args.num_train_epochs)
    if strategy == "steps" and train_args.max_steps > 0 and train_args.save_steps >= 1:
        return math.ceil(train_args.max_steps / int(train_args.save_steps))
    return None


def check_checkpoint_averaging(k: int, train_args: Any, method_args: Any, *parsed: Any) -> None:
    """Refuse, before any work, a run whose last ``k`` checkpoints cannot be averaged; keep at least ``k`` of them.

    Args:
        k: ``--average_checkpoints`` (0: off, nothing is checked).
        train_args: The run's ``TrainingArguments``; ``save_total_limit`` is raised to ``k`` when it was not given.
        method_args: The run's ``MethodArgs`` (the method must train with the Trainer).
        *parsed: The run's other argument objects: the flags and YAML keys :func:`tlnlp.config.parse_args` records
            as given on them tell a ``save_total_limit`` given below ``k`` (refused) from tlnlp's default (raised).

    Raises:
        EnsembleError: The method writes no checkpoints (or ones that do not average), checkpoints are off, the best
            checkpoint is to be loaded instead, or fewer than ``k`` checkpoints will be kept or written.
    """
    if not k:
        return
    method = METHODS.get(method_args.method)
    if not method.trains_with_trainer:
        raise EnsembleError(f"average_checkpoints={k}: method={method.name} fits without the Trainer and writes no "
                            "checkpoint-* folders to average. Use a Trainer method (full, lora, ulmfit...), or drop "
                            "--average_checkpoints (--ensemble_seeds works with every method).")
    if method.name == "adalora":
        raise EnsembleError(f"average_checkpoints={k}: adalora prunes ranks while it trains, so its checkpoints hold "
                            "different rank patterns whose weights do not average. Use lora, or drop "
                            "--average_checkpoints.")
    if _strategy(train_args) not in ("steps", "epoch"):
        raise EnsembleError(f"average_checkpoints={k} needs checkpoints, but save_strategy="
                            f"{_strategy(train_args)!r}. Set --save_strategy epoch, or steps with --save_steps N.")
    if train_args.load_best_model_at_end or getattr(method_args, "early_stopping_patience", None):
        raise EnsembleError(f"average_checkpoints={k} replaces the final weights by the mean of the last {k} "
                            "checkpoints, while load_best_model_at_end (turned on by early_stopping_patience) keeps "
                            "the best one. Drop one of them.")
    limit = train_args.save_total_limit
    if limit is not None and limit < k:
        given = {key for obj in (train_args, method_args, *parsed) for key in getattr(obj, "_tlnlp_explicit", {})}
        if "save_total_limit" in given:
            raise EnsembleError(f"save_total_limit={limit} keeps fewer checkpoints than average_checkpoints={k} "
                                f"averages. Set --save_total_limit {k} or more, or leave it out.")
        logger.info("average_checkpoints=%d: keeping the last %d checkpoints (save_total_limit %s -> %d).", k, k,
                    limit, k)
        train_args.save_total_limit = k
    expected = expected_checkpoints(train_args)
    if expected is not None and expected < k:
        raise EnsembleError(f"average_checkpoints={k}, but this run writes only {expected} checkpoint(s) "
                            f"(save_strategy={_strategy(train_args)}). Train longer, save more often (--save_strategy "
                            "steps --save_steps N), or average fewer.")


def checkpoint_folders(output_dir: str | Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders of a run, oldest first (by step)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [path for _, path in sorted(found)]


def checkpoint_weights(folder: Path) -> tuple[dict[str, torch.Tensor], bool]:
    """The weights a checkpoint folder holds, and whether they are an adapter's.

    Raises:
        EnsembleError: No safetensors weights in the folder.
    """
    adapter = folder / _ADAPTER_WEIGHTS
    files = [adapter] if adapter.is_file() else sorted(folder.glob("model*.safetensors"))
    if not files:
        raise EnsembleError(f"{folder} holds no safetensors weights (model.safetensors or {_ADAPTER_WEIGHTS}); "
                            "checkpoint averaging reads those. Keep the Trainer's default safetensors checkpoints.")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state, adapter.is_file()


def average_tensors(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The element-wise mean of floating-point tensors (float32, cast back); else the last tensor unchanged."""
    last = tensors[-1]
    if not last.is_floating_point():
        return last
    return torch.stack([t.float() for t in tensors]).mean(dim=0).to(last.dtype)


def _load(model: Any, state: dict[str, torch.Tensor], adapter: bool) -> None:
    """Put averaged weights into ``model`` (an adapter's through peft, whose saved keys omit the adapter's name)."""
    if adapter:
        from peft import set_peft_model_state_dict  # deferred: peft is needed only for adapter runs

        result = set_peft_model_state_dict(model, state, adapter_name=getattr(model, "active_adapter", "default"))
    else:
        result = model.load_state_dict(state, strict=False)  # the saved file leaves out tied weights
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise EnsembleError(f"The averaged checkpoint weights do not fit the model: unexpected keys "
                            f"{unexpected[:5]}. Average checkpoints of this run only.")


def average_last_checkpoints(trainer: Any, k: int) -> list[str]:
    """Load the mean of the last ``k`` checkpoints' weights into ``trainer.model``; every process calls it.

    Args:
        trainer: The Trainer after ``train()``; its ``output_dir`` holds the ``checkpoint-*`` folders.
        k: How many of the newest checkpoints to average.

    Returns:
        The averaged checkpoints' folder names, oldest first.

    Raises:
        EnsembleError: Fewer than ``k`` checkpoints, or checkpoints whose weights differ in names or shapes.
    """
    folders = checkpoint_folders(trainer.args.output_dir)[-k:]
    if len(folders) < k:
        raise EnsembleError(f"average_checkpoints={k}, but {trainer.args.output_dir} holds {len(folders)} "
                            "checkpoint-* folder(s). Save more often (--save_strategy steps --save_steps N), train "
                            "longer, or average fewer.")
    loaded = [checkpoint_weights(folder) for folder in folders]
    states = [state for state, _ in loaded]
    for folder, state in zip(folders, states, strict=True):
        shapes = {key: tuple(t.shape) for key, t in state.items()}
        if shapes != {key: tuple(t.shape) for key, t in states[-1].items()}:
            raise EnsembleError(f"{folder.name} holds other weights than {folders[-1].name} (names or shapes "
                                "differ); only checkpoints of one run average.")
    averaged = {key: average_tensors([state[key] for state in states]) for key in states[-1]}
    _load(trainer.model, averaged, loaded[-1][1])
    names = [folder.name for folder in folders]
    logger.info("Weights averaged over %s.", ", ".join(names))
    return names


@dataclass
class AveragedCheckpoints:
    """What checkpoint averaging did to a run, for its results and card.

    Attributes:
        checkpoints: The averaged checkpoints' folder names, oldest first (empty: no averaging).
    """

    checkpoints: list[str] = field(default_factory=list)

    @property
    def results(self) -> dict[str, Any]:
        """``{"averaged_checkpoints": [names]}`` for ``all_results.json``, or nothing."""
        return {"averaged_checkpoints": list(self.checkpoints)} if self.checkpoints else {}

    @property
    def sections(self) -> dict[str, str]:
        """The card's "Checkpoint averaging" section, or nothing."""
        if not self.checkpoints:
            return {}
        names = ", ".join(f"`{name}`" for name in self.checkpoints)
        return {"Checkpoint averaging": f"The saved weights are the mean of the last {len(self.checkpoints)} "
                                        f"checkpoints' weights ({names}; `--average_checkpoints`), loaded before the "
                                        "final evaluation: every result of this card is the averaged model's."}


def average_checkpoints_if_asked(trainer: Any, k: int) -> AveragedCheckpoints:
    """:func:`average_last_checkpoints` when ``k`` (``--average_checkpoints``) is set; what it averaged."""
    return AveragedCheckpoints(average_last_checkpoints(trainer, k) if k else [])
