"""A multi-task run's outputs: one ordinary classification run folder per task (through ``finish``), and the run's own.

Layout of the run's ``output_dir``::

    tasks/<task>/            per task: the shared encoder with the task's head as a plain transformers folder, its
                             eval/test results, predictions.jsonl, confusion matrix, run_config.yaml, card
    multitask.json           the task names and folders (what ``tlnlp.load_pipeline(run, task=...)`` reads)
    multitask_results.json   every task's record and metrics, the sampling, the baseline comparison, flat metrics
    all_results.json, train_results.json, eval_results.json, test_results.json   eval_<task>_*, test_<task>_*, means
    trainer_state.json, training_curves.png, run_config.yaml, environment.json, README.md (the run's card)
    checkpoint-*/            the Trainer's checkpoints of the multi-task model (resume)
    hp_search/               with --hp_search: the study, trials table, plot and best_config.yaml
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlnlp.config import rerun_command, resolved_config, write_run_config
from tlnlp.config.run_folder import write_text_atomic
from tlnlp.hub import CardSpec, build_model_card
from tlnlp.inference import MULTITASK_MANIFEST, TASKS_FOLDER
from tlnlp.methods import MethodResult
from tlnlp.models import count_parameters
from tlnlp.multitask.card import SECTION_TITLE, multitask_section
from tlnlp.multitask.results import RESULTS_FILE, MultiTaskResult
from tlnlp.report import plot_training_curves
from tlnlp.runs import RunContext, TrainedRun, environment_info, finish, reproduce_command, write_json
from tlnlp.training import build_trainer

__all__ = ["TrainedTasks", "finish_task", "write_run_outputs"]

logger = logging.getLogger(__name__)


@dataclass
class TrainedTasks:
    """A multi-task run after ``trainer.train()``: what writing its outputs needs.

    Attributes:
        task: The classification :class:`tlnlp.tasks.Task`.
        specs: The tasks.
        datas: Each task's data.
        tokenized: Each task's tokenised splits.
        trainer: The :class:`~tlnlp.multitask.trainer.MultiTaskTrainer` after training.
        train_result: What ``train()`` returned.
        prepared: The prepared multi-task model (:class:`~tlnlp.methods.MethodResult`).
        base_model: The model the run started from.
        config_objects: The parsed argument objects (written to ``run_config.yaml``).
        sections: More sections of the run's card (e.g. the hyperparameter search's).
        results: More numbers of the run (e.g. the search's ``hp_search_*``).
    """

    task: Any
    specs: list[Any]
    datas: list[Any]
    tokenized: list[Any]
    trainer: Any
    train_result: Any
    prepared: MethodResult
    base_model: str
    config_objects: tuple[Any, ...]
    sections: dict[str, str] = field(default_factory=dict)
    results: dict[str, float] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        """The run's folder."""
        return Path(self.trainer.args.output_dir)


def finish_task(run: TrainedTasks, index: int, encoder: Any, section: str) -> dict[str, float]:
    """Write task ``index``'s folder (``tasks/<name>``) as a classification run's, through :func:`tlnlp.runs.finish`.

    The task's classifier (``encoder`` + its head) is scored and saved by a Trainer of its own; the folder's
    ``trainer_state.json`` and curves are the multi-task run's. Every process must call it.

    Args:
        run: The trained run.
        index: The task id.
        encoder: The plain encoder (an adapter merged into it), shared by every task's classifier.
        section: The task card's "Multi-task learning" section.

    Returns:
        Every metric of the task's folder (``eval_*``, ``test_*``, ``train_*``).
    """
    spec, data, tokenized = run.specs[index], run.datas[index], run.tokenized[index]
    model = run.prepared.model
    classifier = model.standalone(spec.name, encoder)
    folder = run.out / TASKS_FOLDER / spec.name
    args = dataclasses.replace(run.trainer.args, output_dir=str(folder), overwrite_output_dir=True,
                               resume_from_checkpoint=None, push_to_hub=False, report_to="none")
    prepared = MethodResult(classifier, None, run.prepared.method_args, run.prepared.methods)
    view = build_trainer(prepared, run.trainer.processing_class, tokenized, args,
                         compute_metrics=run.task.compute_metrics(data, spec.data_args))
    view.state = copy.deepcopy(run.trainer.state)
    counts = count_parameters(model)
    return finish(RunContext(
        output_dir=folder, recipe="multitask", task=run.task, data=data, base_model=run.base_model,
        config_objects=run.config_objects, trained=TrainedRun(view, run.train_result, tokenized, prepared),
        sections={SECTION_TITLE: section},
        results={"train_trainable_parameters": counts["trainable"], "train_total_parameters": counts["total"]}))


def _fingerprint(result: MultiTaskResult) -> str:
    digest = hashlib.sha256()
    for record in result.tasks:
        digest.update(f"{record.name}:{record.fingerprint}\n".encode())
    return digest.hexdigest()


def _split_files(run: TrainedTasks, metrics: dict[str, float]) -> None:
    for prefix in ("eval", "test"):
        found = {k: v for k, v in metrics.items() if k.startswith(f"{prefix}_")}
        if found:
            write_json(run.out / f"{prefix}_results.json", found)
    write_json(run.out / "all_results.json", metrics)


def _card(run: TrainedTasks, result: MultiTaskResult, metrics: dict[str, float]) -> None:
    names = {r.name for r in result.tasks}
    shown = {}
    for key, value in metrics.items():  # each task's accuracies; the means over the tasks say so in their names
        split, _, rest = key.partition("_")
        if split in ("eval", "test") and key.endswith("_accuracy"):
            shown[key if rest.rsplit("_accuracy", 1)[0] in names else f"{split}_task_mean_{rest}"] = value
    config = resolved_config(*run.config_objects)
    hyper = {k: config[k] for k in ("sampling", "temperature", "learning_rate", "num_train_epochs", "max_steps",
                                    "per_device_train_batch_size", "max_seq_length", "seed") if k in config}
    description = run.prepared.methods[0].describe(run.task).rstrip(".")
    licences = sorted({str(d.license) for d in run.datas if getattr(d, "license", None)})
    card = build_model_card(CardSpec(
        model_name=run.out.name, base_model=run.base_model, task="text-classification",
        method=result.method, method_description=f"{description}; one shared encoder, one head per task.",
        dataset_license="; ".join(licences) or None,
        dataset_name=" + ".join(r.dataset for r in result.tasks), metrics=shown, hyperparameters=hyper,
        command=reproduce_command() + "\n# or, from this folder's settings:\n" + rerun_command("multitask"),
        tags=["multi-task"], trainable_parameters={"trainable": result.train_metrics.get(
            "train_trainable_parameters"), "total": result.train_metrics.get("train_total_parameters")},
        extra_sections={SECTION_TITLE: multitask_section(result), **run.sections}))
    write_text_atomic(run.out / "README.md", str(card))


def write_run_outputs(run: TrainedTasks, result: MultiTaskResult) -> None:
    """Main process: the run's own files (see the module docstring); the task folders are written already."""
    out = run.out
    metrics = result.metrics()
    run.trainer.save_metrics("train", result.train_metrics, combined=False)
    run.trainer.save_state()
    _split_files(run, metrics)
    history = run.trainer.state.log_history
    if any("loss" in entry or "eval_loss" in entry for entry in history):
        plot_training_curves(history, out / "training_curves.png", title=f"{out.name}: training curves (mean of "
                                                                           "the tasks' evaluation)")
    write_run_config(out, *run.config_objects, recipe="multitask")
    config = resolved_config(*run.config_objects)
    tasks = {r.name: {"data_name": r.dataset, "data_version": r.data_version, "data_fingerprint": r.fingerprint,
                      "labels": r.labels} for r in result.tasks}
    write_json(out / "environment.json", environment_info(int(config.get("seed", 0) or 0), _fingerprint(result),
                                                          {"world_size": run.trainer.args.world_size,
                                                           "tasks": tasks}))
    _card(run, result, metrics)
    write_json(out / RESULTS_FILE, result.to_dict())
    write_json(out / MULTITASK_MANIFEST, {"tasks": {r.name: r.folder for r in result.tasks},
                                          "target_task": result.target_task})
    logger.info("Multi-task outputs written to %s", out)
