"""Build a transformers ``Trainer`` for a tlnlp task: collator, metrics, optimizer groups, callbacks, resume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, has_length

from tlnlp.training.unfreezing import (
    FrozenAwareAdamW,
    LayerRatesCallback,
    build_layerwise_scheduler,
    layer_rates,
    zero_frozen_grads,
)

__all__ = ["OutputDirError", "TlnlpTrainer", "build_trainer", "build_optimizer", "prepare_output_dir"]

logger = logging.getLogger(__name__)

_RESUME_WORDS = ("last", "latest", "true", "yes", "1")


class OutputDirError(FileExistsError):
    """The output folder is not safe to write into as asked."""


class TlnlpTrainer(Trainer):
    """A ``Trainer`` with process-count-independent length grouping and order-keeping evaluation.

    Training: the stock sampler groups by the per-process batch, so 2 processes with half the batch see other
    global batches than 1 process. Grouping by the global batch (per-device batch x processes x accumulation
    steps) gives every optimisation step the same examples, whatever the launch: the accelerate data loader hands
    consecutive per-device slices of each global batch to the processes in turn.

    Evaluation: with ``group_by_length`` the stock Trainer also reorders evaluation rows by length, and
    ``predict`` then returns predictions in that order, not the dataset's; here evaluation stays sequential so
    prediction ``i`` belongs to row ``i``.

    ULMFiT options (``ulmfit_settings``, set by :func:`build_trainer`): the scheduler is the slanted triangular
    or Trainer schedule times each layer group's thaw mask; frozen groups' gradients are zeroed before clipping;
    ``learning_rate`` in the logs is the top group's rate and ``lr/<group>`` gives every group's (TensorBoard).
    """

    ulmfit_settings: Any = None
    _steps_per_epoch: int | None = None
    _group_rates: dict[str, float] | None = None

    def set_initial_training_values(self, args: TrainingArguments, dataloader: Any) -> tuple[Any, ...]:
        """The Trainer's step counts; keeps the optimisation steps per epoch for epoch-wise unfreezing."""
        values = super().set_initial_training_values(args, dataloader)
        self._steps_per_epoch = int(values[1])  # optimisation steps per epoch, for --gradual_unfreezing epoch
        return values

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        """The Trainer's scheduler, or the ULMFiT one (slanted triangular / thaw masks) when options ask for it."""
        if self.ulmfit_settings is None or self.lr_scheduler is not None or not self.ulmfit_settings.active:
            return super().create_scheduler(num_training_steps, optimizer)
        self.lr_scheduler = build_layerwise_scheduler(optimizer or self.optimizer, self.ulmfit_settings, self.args,
                                                      num_training_steps, self._steps_per_epoch)
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def _clip_grad_norm(self, model: torch.nn.Module) -> Any:
        if self.ulmfit_settings is not None:
            zero_frozen_grads(self.optimizer)  # the norm (and clipping) of the groups that train, as if frozen
        return super()._clip_grad_norm(model)

    def _get_learning_rate(self) -> float:
        if self.ulmfit_settings is None or not self.ulmfit_settings.active:
            return super()._get_learning_rate()
        self._group_rates = layer_rates(self.optimizer)  # called after optimizer.step: this step's rates
        return max(self._group_rates.values())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """``Trainer.log`` plus ``lr/<group>`` (each layer group's rate at the logged step) for TensorBoard."""
        if self._group_rates is not None and "learning_rate" in logs and self.ulmfit_settings.layerwise:
            logs.update({f"lr/{name}": rate for name, rate in self._group_rates.items()})
        super().log(logs, start_time)

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The Trainer's checkpoint; AdaLoRA adapters at full rank plus their budget state, for an exact resume."""
        from tlnlp.methods.adapters import adalora_full_rank_save

        def folder() -> str:
            return str(Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")

        with adalora_full_rank_save(self.model, folder, write=self.args.should_save):
            super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """The Trainer's resume, plus AdaLoRA's rank pattern and importance statistics."""
        from tlnlp.methods.adapters import adalora_checkpoint_load

        with adalora_checkpoint_load(self.model if model is None else model, resume_from_checkpoint):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        """The Trainer's ``load_best_model_at_end``, with the best checkpoint's own AdaLoRA rank pattern."""
        from tlnlp.methods.adapters import adalora_checkpoint_load

        with adalora_checkpoint_load(self.model, str(self.state.best_model_checkpoint or "")):
            super()._load_best_model()

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        args = self.args
        if args.train_sampling_strategy != "group_by_length" or args.world_size == 1 or not has_length(dataset):
            return super()._get_train_sampler(train_dataset)
        lengths = dataset[args.length_column_name] if args.length_column_name in dataset.column_names else None
        global_batch = args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps
        name = self.processing_class.model_input_names[0] if self.processing_class is not None else None
        return LengthGroupedSampler(global_batch, dataset=dataset, lengths=lengths, model_input_name=name)


def prepare_output_dir(train_args: TrainingArguments) -> str | None:
    """Check the output folder and resolve ``--resume_from_checkpoint``; returns the checkpoint to resume from.

    A non-empty ``output_dir`` is refused unless ``--overwrite_output_dir`` is set or the run resumes.
    ``--resume_from_checkpoint last`` (or ``true``) picks the newest ``checkpoint-*`` folder in ``output_dir``.

    Raises:
        OutputDirError: the folder holds files and neither flag allows writing there, or no checkpoint exists.
    """
    out = Path(train_args.output_dir)
    resume = getattr(train_args, "resume_from_checkpoint", None)
    if resume is not None and str(resume).lower() in _RESUME_WORDS:
        last = get_last_checkpoint(str(out)) if out.is_dir() else None
        if last is None:
            raise OutputDirError(
                f"--resume_from_checkpoint {resume}: no checkpoint-* folder in output_dir={str(out)!r}. Give the path "
                "of a checkpoint folder, or start a new run without --resume_from_checkpoint."
            )
        logger.info("Resuming from %s", last)
        return last
    if resume is not None:
        if not Path(resume).is_dir():
            raise OutputDirError(f"--resume_from_checkpoint {resume!r}: no such checkpoint folder.")
        return str(resume)
    if out.is_dir() and any(out.iterdir()) and not getattr(train_args, "overwrite_output_dir", False):
        last = get_last_checkpoint(str(out))
        hint = (f" It holds a checkpoint ({Path(last).name}): add --resume_from_checkpoint last to continue that run."
                if last else "")
        raise OutputDirError(
            f"output_dir={str(out)!r} already exists and is not empty.{hint} Choose another --output_dir, or add "
            "--overwrite_output_dir to write over it."
        )
    return None


def build_optimizer(train_args: TrainingArguments, param_groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """AdamW over explicit parameter groups (each may carry its own ``lr``; ``name`` is kept for logging).

    Biases and LayerNorm weights get no weight decay, as the Trainer's default optimizer does. A group's
    ``lr_scale`` (ULMFiT's discriminative rates) multiplies ``--learning_rate``; groups that a scheduler marks
    ``"frozen"`` are skipped entirely (:class:`~tlnlp.training.unfreezing.FrozenAwareAdamW`).
    """
    groups = []
    for group in param_groups:
        params = [p for p in group["params"] if p.requires_grad]
        if not params:
            continue
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        base = {k: v for k, v in group.items() if k != "params"}
        if "lr_scale" in base and "lr" not in base:
            base["lr"] = train_args.learning_rate * base["lr_scale"]
        base.setdefault("lr", train_args.learning_rate)
        wd = base.pop("weight_decay", train_args.weight_decay)
        if decay:
            groups.append({**base, "params": decay, "weight_decay": wd})
        if no_decay:
            groups.append({**base, "params": no_decay, "weight_decay": 0.0})
    return FrozenAwareAdamW(groups, lr=train_args.learning_rate, betas=(train_args.adam_beta1, train_args.adam_beta2),
                             eps=train_args.adam_epsilon)


def _configure_early_stopping(train_args: TrainingArguments, patience: int) -> EarlyStoppingCallback:
    if train_args.eval_strategy == "no":
        raise ValueError("early_stopping_patience needs evaluation during training: set --eval_strategy epoch "
                         "(or steps).")
    if not train_args.load_best_model_at_end:
        logger.info("early_stopping_patience=%d: turning on load_best_model_at_end", patience)
        train_args.load_best_model_at_end = True
        if train_args.save_strategy != train_args.eval_strategy:
            train_args.save_strategy = train_args.eval_strategy
    if train_args.metric_for_best_model in (None, "loss"):
        train_args.metric_for_best_model = train_args.metric_for_best_model or "loss"
        train_args.greater_is_better = False
    return EarlyStoppingCallback(early_stopping_patience=patience)


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    datasets: Any,
    train_args: TrainingArguments,
    param_groups: list[dict[str, Any]] | None = None,
    *,
    compute_metrics: Any = None,
    early_stopping_patience: int | None = None,
    callbacks: list[Any] | None = None,
    method_args: Any = None,
    data_collator: Any = None,
) -> Trainer:
    """A ``Trainer`` with dynamic padding, offline metrics, optional explicit parameter groups and early stopping.

    Args:
        model: The model to train.
        tokenizer: Its tokenizer; pads each batch to its longest row (length-grouped batches keep that short).
        datasets: Tokenized ``DatasetDict`` with ``train`` and ``validation`` (``test`` is used by finish_run).
        train_args: ``TrainingArguments`` as parsed.
        param_groups: Optimizer groups from a method (``None``: the Trainer's default AdamW).
        compute_metrics: Metrics function for evaluation.
        early_stopping_patience: Stop after this many evaluations without improvement.
        callbacks: Extra ``TrainerCallback``s.
        method_args: The run's ``MethodArgs``: its ULMFiT options (slanted triangular schedule, gradual unfreezing,
            per-group rates in the logs and ``learning_rates.png``) apply to whatever the method.
        data_collator: Replaces the padding collator (e.g. a language-modelling collator).

    Raises:
        ValueError: Gradual unfreezing or a head warm-up without the layer-wise param groups of ``apply_method``.
    """
    pad_multiple = 8 if (train_args.fp16 or train_args.bf16) else None
    collator = data_collator or DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple)
    all_callbacks = list(callbacks or [])
    # adapter callbacks: e.g. AdaLoRA's rank budget, set at each optimizer step
    from tlnlp.methods.adapters import adapter_callbacks, needs_left_padding

    all_callbacks += adapter_callbacks(model)
    if data_collator is None and needs_left_padding(model) and tokenizer.padding_side != "left":
        logger.info("Prompt tuning on a decoder-only classifier: padding on the left, so that the position the "
                    "classifier reads is the last real token (the tokenizer is saved that way).")
        tokenizer.padding_side = "left"
    settings = method_args.ulmfit_settings() if hasattr(method_args, "ulmfit_settings") else None
    if settings is not None and settings.layerwise and param_groups is None:
        raise ValueError("Discriminative rates, gradual unfreezing and head warm-up need the layer-wise param "
                         "groups: pass the param_groups returned by tlnlp.methods.apply_method to build_trainer.")
    if settings is not None and settings.active:
        all_callbacks.append(LayerRatesCallback(title=f"Learning rate per layer group ({method_args.method})"))
    if early_stopping_patience:
        all_callbacks.append(_configure_early_stopping(train_args, early_stopping_patience))
    if "validation" not in datasets and train_args.eval_strategy != "no":
        logger.warning("No validation split: evaluation during training is turned off.")
        train_args.eval_strategy = "no"
    optimizers: tuple[Any, Any] = (None, None)
    if param_groups is not None:
        optimizers = (build_optimizer(train_args, param_groups), None)
    trainer = TlnlpTrainer(
        model=model,
        args=train_args,
        data_collator=collator,
        train_dataset=datasets["train"],
        eval_dataset=datasets.get("validation"),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=all_callbacks,
        optimizers=optimizers,
    )
    trainer.ulmfit_settings = settings if settings is not None and settings.active else None
    return trainer
