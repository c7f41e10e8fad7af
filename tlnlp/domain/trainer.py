"""The domain-adversarial Trainer: tlnlp's Trainer with the DANN loss, the domain classifier and its logs.

The model stays the plain classifier (or the method's PEFT model), so saving, scoring and reloading work as in
every run. The domain classifier lives beside it: this Trainer adds it to the optimizer, clips its gradients,
averages them across processes and clears them after each step (the Trainer and DDP do that for the model only),
and writes it into every checkpoint
(``domain_classifier.safetensors``) so that ``--resume_from_checkpoint`` restores it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from tlnlp.domain.adversary import Adversary, dann_loss, grad_reverse
from tlnlp.domain.batches import PAIR_COLUMNS
from tlnlp.errors import UserError
from tlnlp.training import TlnlpTrainer

__all__ = ["HEAD_FILE", "LOG_KEYS", "TARGET_EVAL_PREFIX", "CheckpointError", "DomainAdversarialTrainer"]

logger = logging.getLogger(__name__)

#: The domain classifier's weights inside a checkpoint folder.
HEAD_FILE = "domain_classifier.safetensors"
#: Keys added to every training log, averaged over the steps since the last log (and the processes).
LOG_KEYS = ("classification_loss", "domain_loss", "domain_accuracy", "dann_lambda")
#: Prefix of the labelled target validation split's metrics (``eval_target_accuracy``...).
TARGET_EVAL_PREFIX = "eval_target"


class CheckpointError(UserError, FileNotFoundError):
    """A checkpoint to resume from holds no domain classifier."""


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _ClearDomainGradients(TrainerCallback):
    """After every optimizer step, clear the domain classifier's gradients (the Trainer clears the model's only)."""

    def __init__(self, head: torch.nn.Module) -> None:
        self.head = head

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.head.zero_grad(set_to_none=True)


class DomainAdversarialTrainer(TlnlpTrainer):
    """A :class:`~tlnlp.training.TlnlpTrainer` whose training loss is DANN's (see :func:`dann_loss`).

    Training batches come from :class:`~tlnlp.domain.DomainMixCollator` (they carry ``domain_labels``);
    evaluation batches do not, and are scored as in any classification run. Each evaluation of the Trainer's own
    validation split also scores the target's labelled validation split, when there is one, as
    ``eval_target_*``, without touching the random state (training goes on as it would without it).

    Args:
        *args: The Trainer's arguments.
        adversary: The domain classifier, the captured representation and the λ schedule.
        target_eval_dataset: The target's labelled validation rows (tokenized), or None.
        **kwargs: The Trainer's keyword arguments.
    """

    def __init__(self, *args: Any, adversary: Adversary, target_eval_dataset: Any = None, **kwargs: Any) -> None:
        self.adversary = adversary
        self.target_eval_dataset = target_eval_dataset
        self._sums: torch.Tensor | None = None
        self._lambda = 0.0
        self._clear = _ClearDomainGradients(adversary.head)
        super().__init__(*args, **kwargs)
        self.adversary.head.to(self.args.device)
        self.add_callback(self._clear)
        self.loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

    def use_adversary(self, adversary: Adversary) -> None:
        """Train with another adversary from now on (a search trial's, on the trial's model)."""
        self.adversary.representation.remove()
        self.adversary, self._sums, self._lambda = adversary, None, 0.0
        adversary.head.to(self.args.device)
        self._clear.head = adversary.head

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The validation split's metrics, and the target validation split's (``eval_target_*``) when there is one."""
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        if eval_dataset is not None or metric_key_prefix != "eval" or self.target_eval_dataset is None:
            return metrics
        devices = [torch.cuda.current_device()] if self.args.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # a data loader draws a seed: leave training's draws alone
            found = super().evaluate(self.target_eval_dataset, ignore_keys, TARGET_EVAL_PREFIX)
        return {**metrics, **found}

    def _set_signature_columns_if_needed(self) -> None:
        """The model's inputs plus the target row's columns of a paired row (the collator takes them apart)."""
        super()._set_signature_columns_if_needed()
        self._signature_columns += [c for c in PAIR_COLUMNS if c not in self._signature_columns]

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """DANN's loss on a training batch (source and target rows); the usual loss on any other batch."""
        domains = inputs.pop("domain_labels", None)
        if domains is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        features = self.adversary.representation.pooled(inputs.get("attention_mask"))
        progress = self.state.global_step / max(self.state.max_steps or 1, 1)
        self._lambda = self.adversary.coefficient(progress)
        head = self.adversary.head.train(model.training)
        loss, parts = dann_loss(outputs.logits, labels, head(grad_reverse(features, self._lambda)), domains)
        values = torch.stack([parts[k] for k in LOG_KEYS[:3]] + [torch.ones((), device=loss.device)])
        self._sums = values if self._sums is None else self._sums + values
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model: torch.nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        """The Trainer's step, then the domain classifier's gradients averaged across processes."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if _distributed():
            size = dist.get_world_size()
            for param in self.adversary.head.parameters():
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad.div_(size)
        return loss

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """The run's optimizer, plus one group for the domain classifier (its own rate, the run's weight decay)."""
        optimizer = super().create_optimizer(model)
        params = list(self.adversary.head.parameters())
        if not any(p is params[0] for group in optimizer.param_groups for p in group["params"]):
            rate = self.adversary.rate(self.args.learning_rate)
            optimizer.add_param_group({"params": params, "lr": rate, "weight_decay": self.args.weight_decay,
                                       "name": "domain_classifier"})
        return optimizer

    def _clip_grad_norm(self, model: torch.nn.Module) -> Any:
        norm = super()._clip_grad_norm(model)
        torch.nn.utils.clip_grad_norm_(self.adversary.head.parameters(), self.args.max_grad_norm)
        return norm

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """A training log gets the mean classification loss, domain loss and accuracy since the last one, and λ."""
        if "loss" in logs and self._sums is not None:
            sums = self._sums.detach().clone()
            if _distributed():
                dist.all_reduce(sums)
            count = max(float(sums[-1]), 1.0)
            logs.update({key: round(float(value) / count, 4) for key, value in zip(LOG_KEYS[:3], sums[:3].tolist(),
                                                                                    strict=True)})
            logs["dann_lambda"] = round(self._lambda, 4)
            self._sums = None
        super().log(logs, start_time)

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The domain classifier's weights first, then the Trainer's checkpoint into the same folder."""
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous() for k, v in self.adversary.head.state_dict().items()}
            save_file(state, str(folder / HEAD_FILE))
        super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """The Trainer's resume, then the domain classifier of the same checkpoint.

        Raises:
            CheckpointError: The checkpoint was not written by a domain-adaptation run.
        """
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        path = Path(resume_from_checkpoint) / HEAD_FILE
        if not path.is_file():
            raise CheckpointError(
                f"--resume_from_checkpoint {resume_from_checkpoint}: no {HEAD_FILE} in it, so it is not a checkpoint "
                "of a domain-adaptation run. Fix: resume from a checkpoint-* folder this recipe wrote, or start "
                "afresh without --resume_from_checkpoint.")
        self.adversary.head.load_state_dict(load_file(str(path), device=str(self.args.device)))
        logger.info("Domain classifier restored from %s", path)
