"""Load a finished run's output folder for inference, through the task that owns its model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from huggingface_hub import hf_hub_download, snapshot_download
from transformers import AutoConfig

from tlnlp.config.run_folder import ENSEMBLE_MANIFEST, check_finished
from tlnlp.errors import UserError
from tlnlp.methods import reload_run
from tlnlp.models import is_adapter_dir
from tlnlp.models.sentence_classifier import HEAD_CONFIG, is_sentence_classifier
from tlnlp.tasks import SavedModel, Task, task_for_architectures

__all__ = ["ENSEMBLE_MANIFEST", "MULTITASK_MANIFEST", "TASKS_FOLDER", "RunTaskError", "SoftVotingPipeline",
           "load_pipeline", "load_task_pipeline", "run_task_folder", "saved_model"]

logger = logging.getLogger(__name__)

_SNAPSHOT_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.yaml"]


#: A multi-task run's list of its tasks' folders (``{"tasks": {name: "tasks/<name>"}}``), in the run's folder.
MULTITASK_MANIFEST = "multitask.json"
#: The folder of a multi-task run that holds one ordinary classifier folder per task.
TASKS_FOLDER = "tasks"


class RunTaskError(UserError, ValueError):
    """``task=`` does not fit the run: an unknown task, a task for a single-task run, none for a multi-task run."""


def run_task_folder(output_dir: str | Path, task: str | None) -> str | Path:
    """The folder that holds ``task``'s model in a multi-task run (``output_dir`` itself when ``task`` is None).

    Args:
        output_dir: A run's output folder (or a Hub repo id, when ``task`` is None).
        task: A task name of a multi-task run (see its ``multitask.json``), or None.

    Returns:
        ``<output_dir>/tasks/<task>`` (as the manifest names it), or ``output_dir``.

    Raises:
        RunTaskError: An unknown task (the message lists the run's tasks), ``task`` for a folder that holds no
            multi-task run, or no ``task`` for a multi-task run.
    """
    manifest = Path(output_dir) / MULTITASK_MANIFEST
    tasks = json.loads(manifest.read_text(encoding="utf-8"))["tasks"] if manifest.is_file() else None
    if task is None:
        if tasks is not None:
            raise RunTaskError(f"{output_dir} holds a multi-task run: pick its task with task=<name>, one of: "
                               f"{', '.join(tasks)}.")
        return output_dir
    if tasks is None:
        raise RunTaskError(f"task={task!r}: {output_dir} holds no multi-task run ({MULTITASK_MANIFEST} is missing); "
                           "drop task= for a single-task run, or give a multi-task run's output_dir.")
    if task not in tasks:
        raise RunTaskError(f"task={task!r} is not a task of the multi-task run in {output_dir}; its tasks are: "
                           f"{', '.join(tasks)}.")
    return Path(output_dir) / tasks[task]


#: Files that mark a run a method saved in its own format: an adapter, a head on sentence embeddings.
_METHOD_MARKERS = ("adapter_config.json", HEAD_CONFIG)


def _hub_snapshot(repo_id: str, markers: tuple[str, ...]) -> Path | None:
    """The local copy of Hub repo ``repo_id`` (its loadable files) if it holds one of ``markers``, else None."""
    if repo_id.count("/") != 1:
        return None
    for marker in markers:
        try:
            hf_hub_download(repo_id, marker)
        except Exception:  # noqa: BLE001 - not such a repo (or unreachable): the ordinary path reports it
            continue
        return Path(snapshot_download(repo_id, allow_patterns=_SNAPSHOT_FILES))
    return None


def _method_folder(output_dir: str | Path) -> Path | None:
    """The local folder of a run saved in a method's own format (downloading such a Hub repo), else None."""
    folder = Path(output_dir)
    if folder.exists():
        return folder if is_adapter_dir(folder) or is_sentence_classifier(folder) else None
    return _hub_snapshot(str(output_dir), _METHOD_MARKERS)


def _ensemble_folder(output_dir: str | Path) -> Path | None:
    """The local folder of an ensemble run (``ensemble.json``; a pushed one is downloaded, members and all)."""
    folder = Path(output_dir)
    if folder.exists():
        return folder if (folder / ENSEMBLE_MANIFEST).is_file() else None
    return _hub_snapshot(str(output_dir), (ENSEMBLE_MANIFEST,))


def _reloaded(folder: Path) -> SavedModel | None:
    """A run that a method saved in its own format (an adapter, a sentence classifier), loaded by that method."""
    loaded = reload_run(folder)
    if loaded is None:
        return None
    model, tokenizer = loaded
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = (type(model).__name__, type(base).__name__, *(base.config.architectures or ()))
    return SavedModel(source=str(folder), folder=folder, config=base.config, model=model, tokenizer=tokenizer,
                      architectures=tuple(dict.fromkeys(names)))


def saved_model(output_dir: str | Path) -> SavedModel:
    """Find a run's saved model: a local folder or Hub repo, a plain model or an adapter (loaded by its method).

    Args:
        output_dir: Output folder of a tlnlp run (or any folder ``from_pretrained`` reads), or a Hub repo id.

    Returns:
        Where the model is, its config and class names (and the loaded model, for an adapter).

    Raises:
        FileNotFoundError: ``output_dir`` is a local path that does not exist, or holds no saved model.
        UnfinishedRunError: ``output_dir`` holds an unfinished run (interrupted, or still being written).
    """
    if Path(output_dir).is_dir():
        check_finished(output_dir, "loading it")
    folder = _method_folder(output_dir)
    if folder is not None and (reloaded := _reloaded(folder)) is not None:
        return reloaded
    folder = Path(output_dir)
    if not folder.exists() and (str(output_dir).startswith((".", "/", "~")) or str(output_dir).count("/") > 1):
        raise FileNotFoundError(f"{folder} does not exist. Give the output_dir of a finished run, or a Hub repo id "
                                "(namespace/name).")
    if folder.exists() and not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} holds no saved model (no config.json). Give the output_dir of a finished run; a run still "
            "training keeps its checkpoints in checkpoint-* subfolders."
        )
    source = str(folder) if folder.exists() else str(output_dir)  # else: a Hub repo id
    config = AutoConfig.from_pretrained(source)
    return SavedModel(source=source, folder=folder if folder.exists() else None, config=config,
                      architectures=tuple(config.architectures or ()))


class SoftVotingPipeline:
    """A ``text-classification`` pipeline over an ensemble: a label's score is the weighted mean of its members' scores.

    Each member scores every label (``top_k=None``: a softmax, or a sigmoid per label for multi-label runs); the
    weighted mean of those scores ranks the labels. Call it as the transformers pipeline: a text (or a
    ``{"text", "text_pair"}`` dict) or a list of them, and ``top_k``; other keyword arguments go to every member.

    Attributes:
        members: The members' pipelines.
        weights: One relative weight per member.
        labels: The label names in label-id order.
        task: ``"text-classification"``.
    """

    task = "text-classification"

    def __init__(self, members: list[Any], weights: list[float], labels: list[str]) -> None:
        if not members or len(weights) != len(members):
            raise ValueError(f"{len(members)} members and {len(weights)} weights: give one weight per member.")
        self.members, self.weights, self.labels = list(members), [float(w) for w in weights], list(labels)

    def scores(self, inputs: list[Any], **kwargs: Any) -> np.ndarray:
        """``rows x labels``: the weighted mean of the members' label scores for each input, in label-id order."""
        index = {label: i for i, label in enumerate(self.labels)}
        total = np.zeros((len(inputs), len(self.labels)), dtype=np.float64)
        for member, weight in zip(self.members, self.weights, strict=True):
            answers = member(list(inputs), top_k=None, **kwargs) if inputs else []
            for row, ranked in enumerate(answers):
                for item in ranked:
                    total[row, index[item["label"]]] += weight * float(item["score"])
        return total / sum(self.weights)

    def __call__(self, inputs: Any, top_k: int | str | None = "", **kwargs: Any) -> Any:
        """Answer as the transformers pipeline does.

        Without ``top_k``: the best ``{"label", "score"}`` per input (a single input gets a list of one). With
        ``top_k``: a ranked list of ``top_k`` of them per input (None: every label), a single input its list.
        """
        single = isinstance(inputs, (str, dict))
        answers = [self._ranked(row, top_k) for row in self.scores([inputs] if single else list(inputs), **kwargs)]
        if single:
            return [answers[0]] if top_k == "" else answers[0]
        return answers

    def _ranked(self, row: np.ndarray, top_k: int | str | None) -> Any:
        pairs = zip(self.labels, row, strict=True)
        ranked = sorted(({"label": label, "score": float(score)} for label, score in pairs),
                        key=lambda answer: answer["score"], reverse=True)
        if top_k == "":
            return ranked[0]
        return ranked if top_k is None else ranked[: int(top_k)]


def _ensemble_pipeline(folder: Path, device: int | str | None, kwargs: dict[str, Any]) -> tuple[Task, Any]:
    """The members of an ensemble run (its ``ensemble.json``), each loaded as its own run, voting together."""
    manifest = json.loads((folder / ENSEMBLE_MANIFEST).read_text(encoding="utf-8"))
    loaded = [load_task_pipeline(folder / member, device, **kwargs) for member in manifest["members"]]
    names = sorted({task.name for task, _ in loaded})
    if names != ["classification"]:
        raise RunTaskError(f"{folder}: an ensemble's members must all be classification runs; they are: "
                           f"{', '.join(names)}.")
    voter = SoftVotingPipeline([pipe for _, pipe in loaded], manifest["weights"], manifest["labels"])
    return loaded[0][0], voter


def load_task_pipeline(output_dir: str | Path, device: int | str | None = None,
                       **kwargs: Any) -> tuple[Task, Any]:
    """The task of a run's saved model and its pipeline (see :func:`load_pipeline`); an ensemble's soft vote.

    Returns:
        ``(task, pipeline)``: the :class:`tlnlp.tasks.Task` that owns the model's head, and its pipeline.
    """
    ensemble = _ensemble_folder(output_dir)
    if ensemble is not None:
        check_finished(ensemble, "loading it")
        return _ensemble_pipeline(ensemble, device, kwargs)
    saved = saved_model(output_dir)
    task = task_for_architectures(saved.architectures)
    logger.debug("%s holds a %s model (%s).", output_dir, task.name, ", ".join(saved.architectures))
    return task, task.pipeline(saved, device, kwargs)


def load_pipeline(output_dir: str | Path, device: int | str | None = None, task: str | None = None,
                  **kwargs: Any) -> Any:
    """A pipeline over a run's saved model, set up as the run was (label names, truncation, window settings).

    The task that owns the model's head builds it (:meth:`tlnlp.tasks.Task.pipeline`). An adapter run's folder
    (``adapter_config.json``, no full weights) is loaded by its method (:func:`tlnlp.methods.reload_run`: base
    model, adapter and the saved head with the run's label names); so is a Hub repo holding such an adapter. An
    ensemble run's folder (``ensemble.json``, ``--ensemble_seeds``), or a Hub repo it was pushed to, loads every
    member and answers with a :class:`SoftVotingPipeline`: the mean of the members' label scores.

    Args:
        output_dir: Output folder of a tlnlp run (or any folder ``from_pretrained`` reads), or a Hub repo id.
        device: Passed to the pipeline (default: CPU, or the first GPU if one is present).
        task: For a multi-task run (recipes/multitask.py): the name of the task whose model (shared encoder + that
            task's head, with its label names) to load; see :func:`run_task_folder`.
        **kwargs: Other pipeline arguments.

    Returns:
        A classification run: a ``text-classification`` pipeline (multi-label runs score each label with a
        sigmoid; inputs are truncated to the run's ``max_seq_length`` as in training). A question-answering run:
        a :class:`tlnlp.tasks.qa.pipeline.QuestionAnsweringPipeline` with the run's window and answer settings
        (it answers as the run's ``predictions.json`` does). A language model: ``fill-mask`` or
        ``text-generation``.

    Raises:
        FileNotFoundError: ``output_dir`` holds no saved model.
        RunTaskError: ``task`` does not fit the run (e.g. an unknown task name; the message lists the tasks).
        UnfinishedRunError: ``output_dir`` holds an unfinished run (interrupted, or still being written).
    """
    if task is not None and Path(output_dir).is_dir():  # a task's folder lies inside the run's folder
        check_finished(output_dir, "loading it")
    return load_task_pipeline(run_task_folder(output_dir, task), device, **kwargs)[1]
