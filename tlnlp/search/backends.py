"""The two search back ends behind ``Trainer.hyperparameter_search``: optuna (resumable study) and Ray Tune.

optuna keeps its study in ``<output_dir>/hp_search/study.db`` (sqlite): rerunning the same command after an
interruption loads it, marks the trial that was running as failed, and runs only the trials still missing.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlnlp.errors import UserError
from tlnlp.search.space import HpSearchError, SearchSpace

__all__ = ["STUDY_NAME", "SearchBackendMissingError", "TrialRecord", "base_values", "require_backend", "run_optuna",
           "run_ray", "study_storage"]

logger = logging.getLogger(__name__)

#: The optuna study's name; the study file is per output folder.
STUDY_NAME = "tlnlp_hp_search"
#: ``--hp_search`` back end -> (module imported, pip package, tlnlp extra).
BACKEND_PACKAGES = {"optuna": ("optuna", "optuna", "search"), "ray": ("ray.tune", "ray[tune]", "ray")}


class SearchBackendMissingError(UserError, ImportError):
    """``--hp_search`` names a back end whose package is not installed."""


@dataclass
class TrialRecord:
    """One trial of a search, as the trials table shows it.

    Attributes:
        number: The trial's number (optuna) or position (Ray).
        state: ``COMPLETE``, ``FAIL``, ``PRUNED``, ``RUNNING``... (Ray's ``TERMINATED`` reads ``COMPLETE``).
        value: The objective, or None for a trial that did not finish.
        values: The trial's searched values.
        duration_s: Wall time in seconds, when known.
        name: The trial's folder under ``hp_search/``.
    """

    number: int
    state: str
    value: float | None
    values: dict[str, Any] = field(default_factory=dict)
    duration_s: float | None = None
    name: str = ""


def require_backend(backend: str) -> None:
    """Refuse a back end whose package is missing, naming the extra that installs it.

    Raises:
        SearchBackendMissingError: e.g. ``--hp_search optuna needs the optuna package: pip install 'tlnlp[search]'``.
    """
    module, package, extra = BACKEND_PACKAGES[backend]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise SearchBackendMissingError(f"--hp_search {backend} needs the {package} package, which is not installed. "
                                        f"Fix: pip install 'tlnlp[{extra}]' (or pip install '{package}').")


def base_values(space: SearchSpace, train_args: Any, method_args: Any, options_args: Any = None) -> dict[str, Any]:
    """The run's own values of the searched settings that lie inside the space (trial 0 runs them).

    ``options_args``: the recipe's own option dataclass, when the space holds some of its fields.
    """
    holders = {"training": train_args, "method": method_args, "options": options_args}
    found: dict[str, Any] = {}
    for param in space.params:
        value = getattr(holders[param.target], param.name, None)
        if param.kind == "categorical":
            if value in param.choices:
                found[param.name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high:
            if param.kind == "int" and float(value).is_integer():
                found[param.name] = int(value)
            elif param.kind == "float":
                found[param.name] = float(value)
    return found


def study_storage(folder: Path) -> str:
    """The optuna storage URL of the study in ``folder`` (``study.db``, sqlite)."""
    return f"sqlite:///{(Path(folder) / 'study.db').resolve()}"


def _open_study(optuna: Any, folder: Path, direction: str, objective: str) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    storage = study_storage(folder)
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction=direction, load_if_exists=True)
    stored = study.user_attrs.get("objective")
    if stored is None:
        study.set_user_attr("objective", objective)
    elif stored != objective or study.direction.name.lower() != direction:
        raise HpSearchError(f"{folder / 'study.db'} holds a study that optimises {stored} "
                            f"({study.direction.name.lower()}), not {objective} ({direction}). Fix: choose another "
                            "--output_dir, or the same --metric_for_best_model as that search.")
    running = optuna.trial.TrialState.RUNNING
    for trial in study.get_trials(deepcopy=False, states=(running,)):  # the folder's lock: no one else runs them
        logger.warning("Trial %d of the study was interrupted; it is marked failed and run again.", trial.number)
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return study


def _optuna_records(study: Any) -> list[TrialRecord]:
    records = []
    for trial in study.get_trials(deepcopy=False):
        seconds = trial.duration.total_seconds() if trial.duration is not None else None
        records.append(TrialRecord(trial.number, trial.state.name, trial.value, dict(trial.params), seconds,
                                   f"trial-{trial.number}"))
    return records


def run_optuna(trainer: Any, space: SearchSpace, objective: Callable[[dict[str, float]], float],
               settings: Mapping[str, Any]) -> list[TrialRecord]:
    """Run (or continue) the optuna study until ``trials`` trials have finished; every trial, in order.

    Args:
        trainer: The search Trainer (:func:`tlnlp.search.trainer.search_trainer_class`).
        space: The search space.
        objective: Metrics -> objective (the validation metric).
        settings: ``folder`` (the search's folder), ``direction``, ``objective_name``, ``trials``, ``seed`` and
            ``base`` (trial 0's values: the run's own).

    Returns:
        Every trial of the study, including those of earlier, interrupted runs.
    """
    require_backend("optuna")
    import optuna  # deferred: optional back end (the `search` extra)

    folder, direction = Path(settings["folder"]), settings["direction"]
    study = _open_study(optuna, folder, direction, settings["objective_name"])
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    remaining = settings["trials"] - done
    if not study.trials and settings["base"]:
        study.enqueue_trial(settings["base"])  # trial 0: the settings the run was given
    if remaining > 0:
        logger.info("Search: %d of %d trials finished in %s; running %d.", done, settings["trials"], folder, remaining)
        startup = min(10, max(3, settings["trials"] // 2))
        sampler = optuna.samplers.TPESampler(seed=settings["seed"] + len(study.trials), n_startup_trials=startup)
        trainer.hyperparameter_search(
            hp_space=space.training_space, compute_objective=objective, n_trials=remaining, direction=direction,
            backend="optuna", hp_name=lambda trial: f"trial-{trial.number}", study_name=STUDY_NAME,
            storage=study_storage(folder), load_if_exists=True, sampler=sampler, pruner=optuna.pruners.NopPruner())
    else:
        logger.info("Search: all %d trials already finished in %s.", settings["trials"], folder)
    return _optuna_records(optuna.load_study(study_name=STUDY_NAME, storage=study_storage(folder)))


def run_ray(trainer: Any, space: SearchSpace, objective: Callable[[dict[str, float]], float],
            settings: Mapping[str, Any]) -> list[TrialRecord]:
    """Run a Ray Tune search of ``trials`` trials (on ``ray_address``'s cluster, else on this machine).

    Args:
        trainer: The search Trainer.
        space: The search space.
        objective: Metrics -> objective.
        settings: ``folder``, ``direction``, ``trials`` and ``ray_address`` (None: start Ray here).

    Returns:
        Every trial (Ray runs them all again when the command reruns: resuming is optuna's).
    """
    require_backend("ray")
    import ray  # deferred: optional, heavy back end (the `ray` extra)

    was_running = ray.is_initialized()
    if settings.get("ray_address") and not was_running:
        ray.init(address=settings["ray_address"])
    folder = Path(settings["folder"]).resolve()
    try:
        best = trainer.hyperparameter_search(
            hp_space=lambda _: space.ray_config(), compute_objective=objective, n_trials=settings["trials"],
            direction=settings["direction"], backend="ray", storage_path=str(folder / "ray"), name="study",
            verbose=1)
    finally:
        if not was_running:  # Ray started (or joined) for this search: stop its processes here
            ray.shutdown()
    records = []
    for number, trial in enumerate(best.run_summary.trials):
        result = trial.last_result or {}
        state = "COMPLETE" if trial.status == "TERMINATED" else str(trial.status)
        records.append(TrialRecord(number, state, result.get("objective"), space.sample(trial.config),
                                   result.get("time_total_s"), f"run-{trial.trial_id}"))
    return records
