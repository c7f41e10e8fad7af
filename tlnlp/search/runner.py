"""Run a search before a recipe trains: the trials, their outputs, then the best values on the run's arguments.

A recipe calls :func:`prepare_search_output_dir` where it would call ``prepare_output_dir`` (an interrupted search
in the folder continues), then :func:`run_hp_search` once its data are tokenized, before it applies the method; the
final model then trains with the best values as a normal run.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.trainer_utils import SaveStrategy

from tlnlp.methods import METHODS
from tlnlp.search.args import HpSearchArgs
from tlnlp.search.backends import TrialRecord, base_values, require_backend, run_optuna, run_ray
from tlnlp.search.outputs import plot_search, write_best_config, write_trials_table
from tlnlp.search.space import HpSearchError, RecipeOptions, SearchSpace, load_space
from tlnlp.search.trainer import TrialBuilder, search_trainer_class
from tlnlp.training import TlnlpTrainer, build_trainer, prepare_output_dir, requested_stages

__all__ = ["SEARCH_FOLDER", "SearchOutcome", "SearchSetup", "check_search", "objective_of",
           "prepare_search_output_dir", "refuse_search", "run_hp_search", "search_hook", "search_in_progress"]

logger = logging.getLogger(__name__)

#: The search's folder inside the run's output folder.
SEARCH_FOLDER = "hp_search"


@dataclass
class SearchSetup:
    """What a recipe hands to the search.

    Attributes:
        recipe: The recipe's name (for the best config's rerun command).
        task: The run's :class:`tlnlp.tasks.Task` (loads each trial's model).
        data: The task's data.
        model_args: The run's ``ModelArgs``.
        method_args: The run's ``MethodArgs``; the best method options are set on it.
        train_args: The run's ``TrainingArguments``; the best values are set on it.
        tokenizer: The model's tokenizer.
        datasets: The Trainer's tokenized splits; only ``train`` and ``validation`` are used.
        config_objects: The parsed argument dataclasses (the best config is written from them).
        compute_metrics: The Trainer's ``compute_metrics``.
        trainer_class: The recipe's Trainer class (a :class:`~tlnlp.training.TlnlpTrainer` subclass).
        scorer: Scores validation when the Trainer's evaluation does not (see :class:`TrialBuilder`).
        default_metric: The objective when ``--metric_for_best_model`` is unset (``accuracy``, ``f1``, ``loss``...).
        load_model: Loads each trial's fresh model (before the method); default ``task.load_model(model_args, data)``.
        trainer_kwargs: More keyword arguments of :func:`~tlnlp.training.build_trainer` for the trials (a
            language-modelling ``data_collator``, ``callbacks``), as the recipe's own Trainer gets them.
        best_overrides: Settings of ``best_config.yaml`` that make its rerun start where the trials started (a
            multi-stage recipe's earlier stage, trained once before the search: its output instead of a rerun), or
            a function of the best values that returns them (where the best values go into a nested setting,
            e.g. the staged recipe's target stage).
        prepare_method: Applies the method to each trial's fresh model when ``apply_method`` is not how the
            recipe does it (the multi-task model); returns a :class:`tlnlp.methods.MethodResult`.
        build_trainer: Builds the search's Trainer as the recipe builds its own, when that is not
            :func:`~tlnlp.training.build_trainer` (the multi-task Trainer and its sampler):
            ``build_trainer(prepared, datasets, train_args, trainer_class)``, where ``datasets`` holds only the
            ``train`` and ``validation`` splits and ``trainer_class`` is a factory to call with the Trainer's
            keyword arguments.
        search_dir: The search's folder (default ``<train_args.output_dir>/hp_search``), e.g. the chain's folder
            when ``train_args`` is one stage's.
        options: The recipe's own option dataclass and which of its fields the space may hold; the best values are
            set on it (see :class:`~tlnlp.search.space.RecipeOptions`).
        setup_trial: Sets up each trial's Trainer with the trial's options (see :class:`TrialBuilder`).
    """

    recipe: str
    task: Any
    data: Any
    model_args: Any
    method_args: Any
    train_args: Any
    tokenizer: Any
    datasets: Mapping[str, Any]
    config_objects: tuple[Any, ...]
    compute_metrics: Callable[..., dict[str, float]] | None = None
    trainer_class: type = TlnlpTrainer
    scorer: Callable[..., Any] | None = None
    default_metric: str = "accuracy"
    load_model: Callable[[], Any] | None = None
    trainer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    best_overrides: Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]] = field(
        default_factory=dict)
    prepare_method: Callable[[Any, Any], Any] | None = None
    build_trainer: Callable[..., Any] | None = None
    search_dir: str | Path | None = None
    options: RecipeOptions | None = None
    setup_trial: Callable[[Any, Any, Any], None] | None = None

    @property
    def folder(self) -> Path:
        """Where the search writes: ``search_dir``, else ``<output_dir>/hp_search``."""
        if self.search_dir is not None:
            return Path(self.search_dir)
        return Path(self.train_args.output_dir) / SEARCH_FOLDER


@dataclass
class SearchOutcome:
    """What a search found (empty when no search ran).

    Attributes:
        backend: ``none``, ``optuna`` or ``ray``.
        objective: The optimised metric, e.g. ``eval_accuracy``.
        direction: ``maximize`` or ``minimize``.
        trials: Every trial (with optuna, those of interrupted earlier runs too).
        best: The best finished trial.
        space: The search space.
        files: What the search wrote, by kind.
        where: The search's folder as the run's card names it (relative to the run's folder).
    """

    backend: str = "none"
    objective: str | None = None
    direction: str | None = None
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    space: SearchSpace | None = None
    files: dict[str, Path] = field(default_factory=dict)
    where: str = SEARCH_FOLDER

    @property
    def values(self) -> dict[str, Any]:
        """The best trial's values (``{}`` without a search)."""
        return dict(self.best.values) if self.best is not None else {}

    @property
    def results(self) -> dict[str, Any]:
        """``hp_search_*`` numbers for ``all_results.json``."""
        if self.best is None:
            return {}
        return {"hp_search_trials": len(self.trials), "hp_search_best_trial": self.best.number,
                f"hp_search_best_{self.objective}": self.best.value}

    @property
    def sections(self) -> dict[str, str]:
        """The card's section on the search."""
        if self.best is None or self.space is None:
            return {}
        finished = sum(r.value is not None for r in self.trials)
        values = "\n".join(f"- `{k}` = {v!r} (searched: {p.describe()})"
                           for p in self.space.params for k, v in self.best.values.items() if k == p.name)
        text = (f"The hyperparameters of this model come from a hyperparameter search ({self.backend}) of "
                f"{len(self.trials)} trials "
                f"({finished} finished) over the {self.space.source}, optimising `{self.objective}` on the "
                f"validation split ({self.direction}); the test split was not used. The best trial "
                f"({self.best.number}, {self.objective} = {self.best.value:.4g}) set:\n\n{values}\n\nThe trials are "
                f"in `{self.where}/trials.md` and `{self.where}/search.png`; `{self.where}/best_config.yaml` "
                "reruns the best trial.")
        return {"Hyperparameter search": text}


def objective_of(train_args: Any, default_metric: str) -> tuple[str, str]:
    """``(eval_<metric>, direction)``: ``--metric_for_best_model`` (else ``default_metric``) and its direction."""
    metric = getattr(train_args, "metric_for_best_model", None) or default_metric
    name = metric if metric.startswith("eval_") else f"eval_{metric}"
    greater = getattr(train_args, "greater_is_better", None)
    if getattr(train_args, "metric_for_best_model", None) is None or greater is None:
        greater = not name.endswith("loss")
    return name, "maximize" if greater else "minimize"


def _only_search_in(out: Path, kept: tuple[str, ...]) -> bool:
    """Whether ``out`` holds an interrupted search and nothing else (besides hidden files and ``kept`` folders)."""
    if not (out / SEARCH_FOLDER).is_dir():
        return False
    return all(p.name in (SEARCH_FOLDER, *kept) or p.name.startswith(".") for p in out.iterdir())


def search_in_progress(train_args: Any, hp_args: HpSearchArgs | None, kept: tuple[str, ...] = ()) -> bool:
    """Whether this run continues an interrupted search in its output folder (the same command, rerun).

    Args:
        train_args: The run's ``TrainingArguments``.
        hp_args: The search flags.
        kept: Folders an earlier stage of the recipe writes before its search (e.g. ULMFiT's ``lm_adaptation``).
    """
    if hp_args is None or not hp_args.enabled:
        return False
    return (train_args.resume_from_checkpoint is None and not train_args.overwrite_output_dir
            and _only_search_in(Path(train_args.output_dir), kept))


def refuse_search(hp_args: HpSearchArgs | None, recipe: str, reason: str, fix: str) -> None:
    """Refuse ``--hp_search`` in a recipe where a search would not be sound, in one line naming the flag and fix.

    Raises:
        HpSearchError: ``hp_search`` is set.
    """
    if hp_args is not None and hp_args.enabled:
        raise HpSearchError(f"--hp_search {hp_args.hp_search} is not available in the {recipe} recipe: {reason}. "
                            f"Fix: {fix}")


def check_search(hp_args: HpSearchArgs | None, train_args: Any, method_args: Any = None) -> None:
    """Refuse, before any work, a search this run cannot do (nothing to check without ``--hp_search``).

    That is: a method without the Trainer (checked when ``method_args`` is given), an evaluation-only run, several
    processes, or a back end that is not installed.

    Raises:
        HpSearchError: A search this run cannot do.
        SearchBackendMissingError: The back end's package is missing.
    """
    if hp_args is None or not hp_args.enabled:
        return
    if method_args is not None and not METHODS.get(method_args.method).trains_with_trainer:
        raise HpSearchError(f"--hp_search {hp_args.hp_search}: method={method_args.method!r} trains without the "
                            "Trainer, whose hyperparameter search this is. Fix: drop --hp_search, or search a method "
                            "that trains with the Trainer (full, lora, ulmfit, ...).")
    if not requested_stages(train_args).train:
        raise HpSearchError(f"--hp_search {hp_args.hp_search} trains, but this run only evaluates. Fix: add "
                            "--do_train, or drop --hp_search.")
    if getattr(train_args, "world_size", 1) > 1:
        raise HpSearchError(f"--hp_search {hp_args.hp_search} runs in one process, not "
                            f"{train_args.world_size}. Fix: launch with 1 process (Ray Tune runs trials in "
                            "parallel: --hp_search ray).")
    require_backend(hp_args.hp_search)


def prepare_search_output_dir(train_args: Any, hp_args: HpSearchArgs | None, method_args: Any,
                              kept: tuple[str, ...] = ()) -> str | None:
    """``prepare_output_dir`` that lets a search continue: a folder holding only an interrupted search is reused.

    With a search it also checks, before any work, that the method trains with the Trainer, that the run trains,
    that it runs in one process, and that the back end's package is installed. ``kept``: folders that an earlier
    stage of the recipe writes before its search, reused with it (see :func:`search_in_progress`).

    Returns:
        The checkpoint to resume from, or None (see :func:`tlnlp.training.prepare_output_dir`).

    Raises:
        HpSearchError: A search this run cannot do.
        SearchBackendMissingError: The back end's package is missing.
    """
    if hp_args is None or not hp_args.enabled:
        return prepare_output_dir(train_args)
    check_search(hp_args, train_args, method_args)
    if not search_in_progress(train_args, hp_args, kept):
        return prepare_output_dir(train_args)
    logger.info("%s holds an interrupted search: continuing it.", Path(train_args.output_dir) / SEARCH_FOLDER)
    train_args.overwrite_output_dir = True  # only for the folder check: the search's files stay
    try:
        return prepare_output_dir(train_args)
    finally:
        train_args.overwrite_output_dir = False


def _search_args(train_args: Any, folder: Path, keeps_checkpoints: bool) -> Any:
    args = copy.deepcopy(train_args)
    args.output_dir = str(folder)
    args.resume_from_checkpoint = None
    args.push_to_hub = False
    if not keeps_checkpoints:  # a trial's score is its last evaluation: no checkpoint needed
        args.save_strategy = SaveStrategy.NO
        args.load_best_model_at_end = False
    return args


def _search_trainer(setup: SearchSetup, space: SearchSpace, folder: Path) -> Any:
    if "validation" not in setup.datasets or not len(setup.datasets["validation"]):
        raise HpSearchError("--hp_search scores each trial on the validation split, and this run has none. Fix: "
                            "give --validation_file, or keep --validation_split_percentage above 0.")
    builder = TrialBuilder(space, setup.task, setup.data, setup.model_args, setup.method_args, setup.scorer,
                           setup.load_model, setup.prepare_method, _options_args(setup), setup.setup_trial)
    patience = getattr(setup.method_args, "early_stopping_patience", None)
    args = _search_args(setup.train_args, folder, keeps_checkpoints=bool(patience))
    cls = search_trainer_class(setup.trainer_class)

    def make(*, model: Any = None, optimizers: Any = None, **kwargs: Any) -> Any:  # the trials build their own
        return cls(model_init=builder.model_init, trial_builder=builder, **kwargs)

    datasets = {"train": setup.datasets["train"], "validation": setup.datasets["validation"]}  # never the test split
    if setup.build_trainer is not None:
        return setup.build_trainer(builder.build(None), datasets, args, make)
    return build_trainer(builder.build(None), setup.tokenizer, datasets, args, compute_metrics=setup.compute_metrics,
                         trainer_class=make, **setup.trainer_kwargs)


def _objective_function(name: str) -> Callable[[dict[str, float]], float]:
    def objective(metrics: dict[str, float]) -> float:
        if name not in metrics:
            raise HpSearchError(f"The search's objective {name} is not among the validation metrics "
                                f"({', '.join(sorted(metrics))}). Fix: set --metric_for_best_model to one of them "
                                "(without the eval_ prefix).")
        return float(metrics[name])

    return objective


def _options_args(setup: SearchSetup) -> Any:
    return setup.options.args if setup.options is not None else None


def _apply_best(setup: SearchSetup, space: SearchSpace, best: TrialRecord) -> None:
    """Set the best values on the run's arguments (and mark them given, so that run_config.yaml has them)."""
    training, options = space.split(best.values)
    for name, value in training.items():
        current = getattr(setup.train_args, name, None)
        setattr(setup.train_args, name, float(value) if isinstance(current, float) else value)
    for holder, values in ((setup.method_args, options), (_options_args(setup), space.option_values(best.values))):
        for name, value in values.items():
            setattr(holder, name, value)
    own = vars(setup.train_args).get("_tlnlp_explicit")  # a stage's arguments hold their own explicit settings
    explicit = own if own is not None else getattr(setup.config_objects[0], "_tlnlp_explicit", None)
    if isinstance(explicit, dict):
        explicit.update(best.values)


def _best(records: list[TrialRecord], direction: str) -> TrialRecord:
    finished = [r for r in records if r.state == "COMPLETE" and r.value is not None]
    if not finished:
        raise HpSearchError("The search finished no trial, so it has no best values. Fix: see the log of the failed "
                            "trials above, and rerun the command (with optuna it continues the study).")
    pick = max if direction == "maximize" else min
    return pick(finished, key=lambda r: (r.value, -r.number) if direction == "maximize" else (r.value, r.number))


def run_hp_search(hp_args: HpSearchArgs | None, setup: SearchSetup) -> SearchOutcome:
    """Search the space, write the search's outputs, and set the best values on the run's arguments.

    Args:
        hp_args: The search flags (None or ``--hp_search none``: nothing happens).
        setup: The run's task, data, arguments and Trainer parts.

    Returns:
        The trials and the best one (:class:`SearchOutcome`), empty without a search.

    Raises:
        HpSearchError: A bad space, no validation split, an objective the run does not report, or no finished trial.
    """
    if hp_args is None or not hp_args.enabled:
        return SearchOutcome()
    space = load_space(hp_args.hp_space, type(setup.train_args), setup.method_args, setup.options)
    objective, direction = objective_of(setup.train_args, setup.default_metric)
    folder = setup.folder
    logger.info("Search (%s): %d trials over %s, optimising %s (%s).", hp_args.hp_search, hp_args.hp_trials,
                space.source, objective, direction)
    trainer = _search_trainer(setup, space, folder)
    settings = {"folder": folder, "direction": direction, "objective_name": objective, "trials": hp_args.hp_trials,
                "seed": setup.train_args.seed,
                "base": base_values(space, setup.train_args, setup.method_args, _options_args(setup)),
                "ray_address": hp_args.ray_address}
    run = run_optuna if hp_args.hp_search == "optuna" else run_ray
    records = run(trainer, space, _objective_function(objective), settings)
    best = _best(records, direction)
    _apply_best(setup, space, best)
    where = os.path.relpath(folder, setup.train_args.output_dir).replace(os.sep, "/")
    outcome = SearchOutcome(hp_args.hp_search, objective, direction, records, best, space, where=where)
    overrides = setup.best_overrides(best.values) if callable(setup.best_overrides) else setup.best_overrides
    if trainer.is_world_process_zero():
        csv_path, md_path = write_trials_table(folder, records, objective, space.names)
        outcome.files = {"trials_csv": csv_path, "trials_md": md_path,
                         "plot": plot_search(folder, records, objective, direction),
                         "best_config": write_best_config(folder, setup.config_objects, setup.recipe, best, objective,
                                                          overrides)}
    logger.info("Search: best trial %d, %s=%.6g, values %s.", best.number, objective, best.value, best.values)
    return outcome


def search_hook(hp_args: HpSearchArgs | None, recipe: str, config_objects: tuple[Any, ...],
                **fixed: Any) -> Callable[[Mapping[str, Any]], SearchOutcome] | None:
    """A search for library code that builds the run's parts itself (a lower layer that cannot import this one).

    The library calls the hook with the :class:`SearchSetup` fields it builds (``task``, ``data``, ``model_args``,
    ``method_args``, ``train_args``, ``tokenizer``, ``datasets``...) once its data are tokenized, before it applies
    the method, and uses the :class:`SearchOutcome`'s ``results`` and ``sections``.

    Args:
        hp_args: The search flags; None (or ``--hp_search none``) gives None: no hook.
        recipe: The recipe's name (the best config's rerun command).
        config_objects: The recipe's parsed argument dataclasses (the best config is written from them).
        **fixed: Other :class:`SearchSetup` fields the recipe knows (``default_metric``...).
    """
    if hp_args is None or not hp_args.enabled:
        return None

    def hook(parts: Mapping[str, Any]) -> SearchOutcome:
        return run_hp_search(hp_args, SearchSetup(recipe=recipe, config_objects=config_objects, **fixed, **parts))

    return hook
