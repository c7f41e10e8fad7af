"""Build a transformers ``Trainer`` for a prepared model: collator, the methods' hooks, early stopping, resume.

The Trainer here knows no method by name: whatever a method changes in training (optimizer, scheduler,
callbacks, clipping, logs, checkpoint state) comes through the hooks of :class:`tlnlp.methods.Method`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import SequentialSampler
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, has_length

from tlnlp.config.run_folder import (
    OutputDirError,
    claim_output_dir,
    ensure_claimed,
    has_content,
    refuse_busy,
    unfinished_info,
)
from tlnlp.methods import Method, MethodResult, build_optimizer
from tlnlp.models.cpu_dropout import fast_cpu_dropout_wanted, use_fast_cpu_dropout
from tlnlp.training.stages import requested_stages
from tlnlp.training.tracking import check_trackers, prepare_tracking

__all__ = ["OutputDirError", "TlnlpTrainer", "build_trainer", "pad_multiple", "prepare_output_dir"]

logger = logging.getLogger(__name__)

_RESUME_WORDS = ("last", "latest", "true", "yes", "1")


class TlnlpTrainer(Trainer):
    """A ``Trainer`` that runs the methods' hooks, with process-count-independent length grouping and in-order eval.

    Methods: every hook of the run's active methods (``prepared.methods``, the chosen one first) runs at its
    point of the loop: the scheduler (:meth:`~tlnlp.methods.Method.create_scheduler`; the first method that
    gives one wins), gradient clipping (``before_clip``), the logged ``learning_rate`` and extra log keys,
    and extra checkpoint state around saving and loading checkpoints. Hooks may keep per-run state in
    :attr:`method_state`.

    Training: the stock sampler groups by the per-process batch, so 2 processes with half the batch see other
    global batches than 1 process. Grouping by the global batch (per-device batch x processes x accumulation
    steps) gives every optimisation step the same examples, whatever the launch: the accelerate data loader hands
    consecutive per-device slices of each global batch to the processes in turn.

    Evaluation: with ``group_by_length`` the stock Trainer also reorders evaluation rows by length, and
    ``predict`` then returns predictions in that order, not the dataset's; here evaluation stays sequential so
    prediction ``i`` belongs to row ``i``.

    Attributes:
        prepared: What :func:`tlnlp.methods.apply_method` returned (method arguments and active methods).
        method_state: Per-run state of the methods' hooks, by method name.
        steps_per_epoch: Optimisation steps per epoch, once training has started.
    """

    prepared: MethodResult | None = None
    steps_per_epoch: int | None = None

    def __init__(self, *args: Any, prepared: MethodResult | None = None, **kwargs: Any) -> None:
        self.prepared = prepared
        self.method_state: dict[str, Any] = {}
        training_args = kwargs.get("args", args[1] if len(args) > 1 else None)
        if training_args is not None:  # the run holds its folder (lock, marker) before the Trainer writes there
            ensure_claimed(training_args.output_dir)
        super().__init__(*args, **kwargs)
        self._cpu_dropout(self.model)

    def _cpu_dropout(self, model: torch.nn.Module | None) -> None:
        """Cheap dropout masks for CPU training (:mod:`tlnlp.models.cpu_dropout`) unless ``--cpu_dropout torch``."""
        if model is not None and fast_cpu_dropout_wanted(self.args, self.args.device):
            use_fast_cpu_dropout(model)

    def call_model_init(self, trial: Any = None) -> torch.nn.Module:
        """A search trial's fresh model, with the same dropout kernels as a single run's."""
        model = super().call_model_init(trial)
        self._cpu_dropout(model)
        return model

    @property
    def _methods(self) -> tuple[Method, ...]:
        return self.prepared.methods if self.prepared is not None else ()

    @property
    def _method_args(self) -> Any:
        return self.prepared.method_args if self.prepared is not None else None

    def set_initial_training_values(self, args: TrainingArguments, dataloader: Any) -> tuple[Any, ...]:
        """The Trainer's step counts; keeps the optimisation steps per epoch (e.g. for epoch-wise schedules)."""
        values = super().set_initial_training_values(args, dataloader)
        self.steps_per_epoch = int(values[1])
        return values

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        """The first scheduler a method gives (``create_scheduler`` hook), else the Trainer's own."""
        if self.lr_scheduler is None:
            for method in self._methods:
                scheduler = method.create_scheduler(self, self._method_args, optimizer or self.optimizer,
                                                    num_training_steps)
                if scheduler is not None:
                    self.lr_scheduler = scheduler
                    self._created_lr_scheduler = True
                    return scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    def _clip_grad_norm(self, model: torch.nn.Module) -> Any:
        for method in self._methods:
            method.before_clip(self, self._method_args)
        return super()._clip_grad_norm(model)

    def _get_learning_rate(self) -> float:
        for method in self._methods:
            rate = method.learning_rate(self, self._method_args)
            if rate is not None:
                return rate
        return super()._get_learning_rate()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """``Trainer.log`` plus the keys the methods add (``log_values`` hook, e.g. ``lr/<group>``)."""
        for method in self._methods:
            method.log_values(self, self._method_args, logs)
        super().log(logs, start_time)

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """The Trainer's checkpoint, inside each method's ``checkpoint_save`` context (extra state)."""

        def folder() -> str:
            return str(Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")

        with contextlib.ExitStack() as stack:
            for method in self._methods:
                stack.enter_context(method.checkpoint_save(self, self._method_args, self.model, folder))
            super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """The Trainer's resume, inside each method's ``checkpoint_load`` context."""
        with self._loading(self.model if model is None else model, resume_from_checkpoint):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        """The Trainer's ``load_best_model_at_end``, inside each method's ``checkpoint_load`` context."""
        with self._loading(self.model, str(self.state.best_model_checkpoint or "")):
            super()._load_best_model()

    @contextlib.contextmanager
    def _loading(self, model: Any, checkpoint: str) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for method in self._methods:
                stack.enter_context(method.checkpoint_load(self, self._method_args, model, checkpoint))
            yield

    def _get_eval_sampler(self, eval_dataset: Any) -> torch.utils.data.Sampler | None:
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        """Length-grouped batches (tlnlp's default) in an order fixed by the seed and the epoch.

        The stock sampler draws each epoch's order from the global RNG when the epoch starts; a resumed run draws
        it before the checkpoint's RNG state is restored, so the rest of a resumed epoch saw other batches. A
        generator seeded with ``seed + epoch`` gives the uninterrupted run's order (and every process the same one).
        """
        dataset = self.train_dataset if train_dataset is None else train_dataset
        args = self.args
        if args.train_sampling_strategy != "group_by_length" or not has_length(dataset):
            return super()._get_train_sampler(train_dataset)
        lengths = (dataset[args.length_column_name] if hasattr(dataset, "column_names")
                   and args.length_column_name in dataset.column_names else None)
        # one process: its batches; several: the global batch the accelerate sharding splits
        batch = args.per_device_train_batch_size * max(1, args.world_size) * args.gradient_accumulation_steps
        name = self.processing_class.model_input_names[0] if self.processing_class is not None else None
        return EpochSeededLengthGroupedSampler(batch, dataset=dataset, lengths=lengths, model_input_name=name,
                                               seed=args.seed)


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """``LengthGroupedSampler`` whose order depends on ``seed`` and the epoch only (set by ``set_epoch``)."""

    def __init__(self, batch_size: int, *, seed: int, **kwargs: Any) -> None:
        super().__init__(batch_size, **kwargs)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the data loader at the start of each epoch (accelerate and the Trainer both do)."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def _last_complete_checkpoint(out: Path) -> str | None:
    """The newest ``checkpoint-*`` that the Trainer finished writing (its ``trainer_state.json`` is there).

    A run killed while saving leaves a newer folder without it; resuming from that one fails, so it is passed over.
    """
    newest = get_last_checkpoint(str(out))
    while newest is not None and not (Path(newest) / TRAINER_STATE_NAME).is_file():
        logger.warning("Passing over %s: it holds no %s (the run was stopped while saving it).", newest,
                       TRAINER_STATE_NAME)
        step = int(Path(newest).name.rsplit("-", 1)[1])
        older = sorted((p for p in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.is_dir()
                        and p.name.rsplit("-", 1)[1].isdigit() and int(p.name.rsplit("-", 1)[1]) < step),
                       key=lambda p: int(p.name.rsplit("-", 1)[1]))
        newest = str(older[-1]) if older else None
    return newest


def _checkpoint_to_resume(out: Path, resume: Any) -> str:
    if str(resume).lower() in _RESUME_WORDS:
        last = _last_complete_checkpoint(out) if out.is_dir() else None
        if last is None:
            raise OutputDirError(
                f"--resume_from_checkpoint {resume}: no checkpoint-* folder in output_dir={str(out)!r}. Give the path "
                "of a checkpoint folder, or start a new run without --resume_from_checkpoint."
            )
        logger.info("Resuming from %s", last)
        return last
    if not Path(resume).is_dir():
        raise OutputDirError(f"--resume_from_checkpoint {resume!r}: no such checkpoint folder.")
    return str(resume)


def _non_empty_error(out: Path) -> OutputDirError:
    last = get_last_checkpoint(str(out))
    unfinished = unfinished_info(out)
    what = "holds an unfinished run (it was interrupted)" if unfinished is not None else "is not empty"
    hint = (f" It holds a checkpoint ({Path(last).name}): add --resume_from_checkpoint last to continue that run."
            if last else "")
    return OutputDirError(
        f"output_dir={str(out)!r} already exists and {what}.{hint} Choose another --output_dir, or add "
        "--overwrite_output_dir to write over it."
    )


def prepare_output_dir(train_args: TrainingArguments) -> str | None:
    """Check the output folder, hold it for this run, and resolve ``--resume_from_checkpoint``.

    A folder another live run is writing into is refused, whatever the flags. A non-empty ``output_dir`` is refused
    unless ``--overwrite_output_dir`` is set or the run resumes (an unfinished run's folder included).
    ``--resume_from_checkpoint last`` (or ``true``) picks the newest ``checkpoint-*`` folder in ``output_dir``.
    Then the main process holds the folder (:func:`tlnlp.config.run_folder.claim_output_dir`: a lock, and a marker
    until the run's last file is written), from now if it exists, else from the run's first write into it. The
    trackers ``--report_to`` names are checked here too, so that a missing one stops the run before any work.

    Returns:
        The checkpoint to resume from, or None.

    Raises:
        OutputDirError: another run is writing there; the folder holds files and neither flag allows writing there;
            or no checkpoint exists.
        TrackerMissingError: ``--report_to`` names a tracker whose package is not installed.
    """
    check_trackers(getattr(train_args, "report_to", None))
    out = Path(train_args.output_dir)
    refuse_busy(out)
    resume = getattr(train_args, "resume_from_checkpoint", None)
    overwrite = bool(getattr(train_args, "overwrite_output_dir", False))
    checkpoint = _checkpoint_to_resume(out, resume) if resume is not None else None
    if resume is None and has_content(out) and not overwrite:
        raise _non_empty_error(out)
    trains = isinstance(train_args, TrainingArguments) and requested_stages(train_args).train
    claim_output_dir(out, trains=trains, may_write_over=overwrite or resume is not None)
    return checkpoint


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


def pad_multiple(train_args: TrainingArguments) -> int | None:
    """What batches pad their length to a multiple of: 8 under mixed precision on a CUDA device, else nothing.

    Lengths in multiples of 8 let a GPU's tensor cores take fp16/bf16 matmuls. A CPU gains nothing from them and
    pays for every padding token: on a 2-core ``avx512_bf16`` CPU, padding MiniLM's batches to 8 made bf16
    training about 10% slower (``benchmarks/classification_throughput.py``).
    """
    if not (train_args.fp16 or train_args.bf16) or getattr(train_args, "use_cpu", False):
        return None
    return 8 if torch.cuda.is_available() else None


def method_optimizer(train_args: TrainingArguments, prepared: MethodResult) -> torch.optim.Optimizer | None:
    """The first optimizer a method builds (``create_optimizer`` hook), else AdamW over explicit groups, else None."""
    for method in prepared.methods:
        optimizer = method.create_optimizer(train_args, prepared.method_args, prepared.param_groups)
        if optimizer is not None:
            return optimizer
    if prepared.param_groups is None:
        return None  # the Trainer's default optimizer over the trainable parameters
    return build_optimizer(train_args, prepared.param_groups)


def build_trainer(
    prepared: MethodResult,
    tokenizer: PreTrainedTokenizerBase,
    datasets: Any,
    train_args: TrainingArguments,
    *,
    compute_metrics: Any = None,
    callbacks: list[Any] | None = None,
    data_collator: Any = None,
    trainer_class: Callable[..., TlnlpTrainer] = TlnlpTrainer,
) -> TlnlpTrainer:
    """A Trainer for a prepared model: dynamic padding, the methods' hooks, early stopping, offline metrics.

    Everything a method needs comes from ``prepared`` (the result of :func:`tlnlp.methods.apply_method`): its
    callbacks, its optimizer over the method's parameter groups (or AdamW over them, or the Trainer's default
    when there are none), its scheduler and the other hooks (:class:`TlnlpTrainer`), and
    ``--early_stopping_patience``. The trackers of ``--report_to`` are checked and given local-first defaults
    (:func:`tlnlp.training.tracking.prepare_tracking`).

    Args:
        prepared: What ``apply_method`` returned: the model, its parameter groups, the method arguments and the
            active methods.
        tokenizer: The model's tokenizer; pads each batch to its longest row (length-grouped batches keep that
            short).
        datasets: Tokenized ``DatasetDict`` with ``train`` and optionally ``validation`` (evaluated during
            training).
        train_args: ``TrainingArguments`` as parsed.
        compute_metrics: Metrics function for evaluation.
        callbacks: Extra ``TrainerCallback``s.
        data_collator: Replaces the padding collator (e.g. a language-modelling collator).
        trainer_class: The Trainer to build: :class:`TlnlpTrainer`, a subclass with its own loss, or a factory
            taking the same arguments (e.g. ``functools.partial(Subclass, extra=...)``).

    Returns:
        The Trainer.

    Raises:
        TypeError: ``prepared`` is not what ``apply_method`` returned.
        TrackerMissingError: ``--report_to`` names a tracker whose package is not installed.
        ValueError: Options a method cannot honour with these arguments (e.g. gradual unfreezing without
            layer-wise parameter groups, early stopping without evaluation).
    """
    if not isinstance(prepared, MethodResult):
        raise TypeError("build_trainer takes what tlnlp.methods.apply_method returned (model, parameter groups and "
                        f"method arguments), not {type(prepared).__name__}: prepared = apply_method(model, "
                        "method_args); build_trainer(prepared, tokenizer, datasets, train_args).")
    prepare_tracking(train_args)
    collator = data_collator or DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple(train_args))
    all_callbacks = list(callbacks or [])
    for method in prepared.methods:
        all_callbacks += method.callbacks(prepared.model, prepared.method_args)
    patience = getattr(prepared.method_args, "early_stopping_patience", None)
    if patience:
        all_callbacks.append(_configure_early_stopping(train_args, patience))
    if "validation" not in datasets and train_args.eval_strategy != "no":
        logger.warning("No validation split: evaluation during training is turned off.")
        train_args.eval_strategy = "no"
    trainer = trainer_class(
        model=prepared.model,
        args=train_args,
        data_collator=collator,
        train_dataset=datasets["train"],
        eval_dataset=datasets.get("validation"),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=all_callbacks,
        optimizers=(method_optimizer(train_args, prepared), None),
        prepared=prepared,
    )
    for method in prepared.methods:
        method.setup_trainer(trainer, prepared.method_args)
    return trainer
