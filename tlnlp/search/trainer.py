"""The Trainer of a search: each trial rebuilds the model through the method hooks, with the trial's options.

``Trainer.hyperparameter_search`` calls ``model_init`` once per trial and sets the trial's values on the
Trainer's arguments. Here ``model_init`` loads a fresh model and applies the run's method to it, with the trial's
method options (``lora_r``...), so that each trial trains exactly as a run with those flags would: the method's
optimizer groups, scheduler, callbacks and other hooks come from that trial's :func:`tlnlp.methods.apply_method`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, set_seed

from tlnlp.methods import MethodResult, apply_method
from tlnlp.search.space import HpSearchError, SearchSpace
from tlnlp.training.trainer import method_optimizer

__all__ = ["TrialBuilder", "search_trainer_class"]

logger = logging.getLogger(__name__)


@dataclass
class TrialBuilder:
    """Builds one trial's model: a fresh model from the task, the method applied with the trial's options.

    Attributes:
        space: The search space (which values are method options).
        task: The run's :class:`tlnlp.tasks.Task` (loads the model; ``prepare_model`` after the method).
        data: The task's data (sizes the head).
        model_args: The run's ``ModelArgs``.
        method_args: The run's ``MethodArgs``; a trial's method options replace its values.
        scorer: Scores the validation split when the Trainer's own evaluation does not give the objective
            (question answering): ``scorer(trainer, output_dir=folder)`` returns metrics (or a tuple, metrics first).
        load_model: Loads a fresh model (before the method) when ``task.load_model(model_args, data)`` is not how
            the recipe loads it (a language model with its objective, an entailment classifier's two labels).
        prepare_method: ``prepare_method(model, method_args)`` applies the method when
            :func:`tlnlp.methods.apply_method` is not how the recipe does it (the multi-task model).
        options: The recipe's own option dataclass (e.g. ``DomainArgs``) when the space holds some of its fields.
        setup_trial: ``setup_trial(trainer, prepared, options)``, called once a trial's model is built (before the
            Trainer seeds its training): sets up what the recipe's Trainer holds besides the model, with the trial's
            options (the domain-adversarial Trainer's domain classifier).
    """

    space: SearchSpace
    task: Any
    data: Any
    model_args: Any
    method_args: Any
    scorer: Callable[..., Any] | None = None
    load_model: Callable[[], Any] | None = None
    prepare_method: Callable[[Any, Any], MethodResult] | None = None
    options: Any = None
    setup_trial: Callable[[Any, MethodResult, Any], None] | None = None

    def options_for(self, trial: Any) -> Any:
        """The recipe's options with the trial's values (checked as the flags would be); None without options."""
        values = self.space.option_values(self.space.sample(trial))
        if not values:
            return self.options
        try:
            return dataclasses.replace(self.options, **values)
        except ValueError as err:
            raise HpSearchError(f"{self.space.source}: the trial's options {values} are not valid: {err} Fix: narrow "
                                "the range in the search space.") from None

    def method_args_for(self, trial: Any) -> Any:
        """The run's ``MethodArgs`` with the trial's method options (checked as the flags would be)."""
        _, options = self.space.split(self.space.sample(trial))
        if not options:
            return self.method_args
        try:
            return dataclasses.replace(self.method_args, **options)
        except ValueError as err:
            raise HpSearchError(f"{self.space.source}: the trial's method options {options} are not valid: {err} "
                                "Fix: narrow the range in the search space.") from None

    def build(self, trial: Any) -> MethodResult:
        """A fresh model, prepared by the method with the trial's options (and by the task after the method)."""
        model = self.load_model() if self.load_model is not None else self.task.load_model(self.model_args,
                                                                                              self.data)[0]
        prepared = (self.prepare_method or apply_method)(model, self.method_args_for(trial))
        return dataclasses.replace(prepared, model=self.task.prepare_model(prepared.model))

    def model_init(self, trial: Any = None) -> torch.nn.Module:
        """``Trainer``'s ``model_init``: the trial's prepared model."""
        return self.build(trial).model


def _method_callbacks(prepared: MethodResult) -> list[TrainerCallback]:
    return [cb for method in prepared.methods for cb in method.callbacks(prepared.model, prepared.method_args)]


class _SearchTrainerMixin:
    """Overrides of a :class:`tlnlp.training.TlnlpTrainer` (or subclass) for ``hyperparameter_search``."""

    def __init__(self, *args: Any, trial_builder: TrialBuilder, **kwargs: Any) -> None:
        self.trial_builder = trial_builder
        self._search_ready = False
        self._method_callbacks = _method_callbacks(kwargs["prepared"])
        super().__init__(*args, **kwargs)
        self._search_ready = True

    def __getstate__(self) -> dict[str, Any]:
        """The Trainer as Ray sends it to a trial's process: each trial builds its own accelerator.

        An accelerator that has prepared data loaders before (an earlier run in this process) holds weak
        references, which do not pickle; ``train(trial=...)`` creates a new one before it needs it.
        """
        state = dict(self.__dict__)
        state["accelerator"] = state["gather_function"] = None
        return state

    def call_model_init(self, trial: Any = None) -> torch.nn.Module:
        """The trial's model, with the method hooks of that trial (callbacks, optimizer groups, trainer set-up)."""
        if not self._search_ready:  # Trainer.__init__: the model the search was built with
            return self.prepared.model
        prepared = self.trial_builder.build(trial)
        if self.trial_builder.setup_trial is not None:
            self.trial_builder.setup_trial(self, prepared, self.trial_builder.options_for(trial))
        for callback in self._method_callbacks:
            self.remove_callback(type(callback))
        self._method_callbacks = _method_callbacks(prepared)
        for callback in self._method_callbacks:
            self.add_callback(callback)
        self.prepared, self.method_state = prepared, {}
        for method in prepared.methods:
            method.setup_trainer(self, prepared.method_args)
        set_seed(self.args.seed)  # as in a run without a search: the Trainer seeds once the model is built
        return prepared.model

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """The method's optimizer over the trial's model (the Trainer's default when the method has none)."""
        if self.optimizer is None and self.prepared is not None:
            self.optimizer = method_optimizer(self.args, self.prepared)
        return super().create_optimizer(model)

    def _hp_search_setup(self, trial: Any) -> None:
        space = self.trial_builder.space
        if isinstance(trial, Mapping):  # Ray's config: the method options are not TrainingArguments
            trial = space.split(trial)[0]
        floats = {f.name for f in dataclasses.fields(self.args) if "float" in str(f.type)}
        for name in space.split(dict.fromkeys(space.names))[0]:
            value = getattr(self.args, name, None)
            if name in floats and isinstance(value, int) and not isinstance(value, bool):
                setattr(self.args, name, float(value))  # the Trainer casts a value to its current type
        super()._hp_search_setup(trial)

    def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The Trainer's evaluation, or the task's validation scorer (e.g. question answering's EM/F1)."""
        scorer = self.trial_builder.scorer
        if scorer is None or eval_dataset is not None or metric_key_prefix != "eval":
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        found = scorer(self, output_dir=Path(self._get_output_dir(self._trial)))
        metrics = dict(found[0] if isinstance(found, tuple) else found)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def train(self, resume_from_checkpoint: Any = None, trial: Any = None, **kwargs: Any) -> Any:
        """A trial's training; its folder gets ``trial.json`` (values and log history)."""
        output = super().train(resume_from_checkpoint, trial, **kwargs)
        if trial is not None and self.is_world_process_zero():
            folder = Path(self._get_output_dir(trial))
            folder.mkdir(parents=True, exist_ok=True)
            record = {"values": self.trial_builder.space.sample(trial), "log_history": self.state.log_history}
            (folder / "trial.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
        return output


def search_trainer_class(base: type) -> type:
    """``base`` (a :class:`tlnlp.training.TlnlpTrainer` subclass) made to rebuild its model for each trial.

    The class takes ``trial_builder=`` (a :class:`TrialBuilder`) besides the Trainer's arguments, and a
    ``model_init`` instead of a model and optimizer.
    """
    return type(f"Search{base.__name__}", (_SearchTrainerMixin, base), {"__module__": __name__})
