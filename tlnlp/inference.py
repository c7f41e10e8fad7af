"""Load a finished run's output folder for inference, through the task that owns its model."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from huggingface_hub import hf_hub_download, snapshot_download
from transformers import AutoConfig

from tlnlp.config.run_folder import check_finished
from tlnlp.errors import UserError
from tlnlp.methods import reload_run
from tlnlp.models import is_adapter_dir
from tlnlp.models.sentence_classifier import HEAD_CONFIG, is_sentence_classifier
from tlnlp.tasks import SavedModel, Task, task_for_architectures

__all__ = ["MULTITASK_MANIFEST", "TASKS_FOLDER", "RunTaskError", "load_pipeline", "load_task_pipeline",
           "run_task_folder", "saved_model"]

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


def _method_folder(output_dir: str | Path) -> Path | None:
    """The local folder of a run saved in a method's own format (downloading such a Hub repo), else None."""
    folder = Path(output_dir)
    if folder.exists():
        return folder if is_adapter_dir(folder) or is_sentence_classifier(folder) else None
    if str(output_dir).count("/") != 1:
        return None
    for marker in _METHOD_MARKERS:
        try:
            hf_hub_download(str(output_dir), marker)
        except Exception:  # noqa: BLE001 - not such a repo (or unreachable): the ordinary path reports it
            continue
        return Path(snapshot_download(str(output_dir), allow_patterns=_SNAPSHOT_FILES))
    return None


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


def load_task_pipeline(output_dir: str | Path, device: int | str | None = None,
                       **kwargs: Any) -> tuple[Task, Any]:
    """The task of a run's saved model and its pipeline (see :func:`load_pipeline`).

    Returns:
        ``(task, pipeline)``: the :class:`tlnlp.tasks.Task` that owns the model's head, and its pipeline.
    """
    saved = saved_model(output_dir)
    task = task_for_architectures(saved.architectures)
    logger.debug("%s holds a %s model (%s).", output_dir, task.name, ", ".join(saved.architectures))
    return task, task.pipeline(saved, device, kwargs)


def load_pipeline(output_dir: str | Path, device: int | str | None = None, task: str | None = None,
                  **kwargs: Any) -> Any:
    """A pipeline over a run's saved model, set up as the run was (label names, truncation, window settings).

    The task that owns the model's head builds it (:meth:`tlnlp.tasks.Task.pipeline`). An adapter run's folder
    (``adapter_config.json``, no full weights) is loaded by its method (:func:`tlnlp.methods.reload_run`: base
    model, adapter and the saved head with the run's label names); so is a Hub repo holding such an adapter.

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
