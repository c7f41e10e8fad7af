"""The cards' "Multi-task learning" section and the printed summary of a multi-task run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tlnlp.multitask.results import MultiTaskResult, TaskRecord

__all__ = ["SECTION_TITLE", "format_summary", "multitask_section", "sampling_text", "task_section"]

SECTION_TITLE = "Multi-task learning"


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _labels(labels: Sequence[str]) -> str:
    return f"{len(labels)} (" + ", ".join(labels[:4]) + (", ..." if len(labels) > 4 else "") + ")"


def sampling_text(sampling: str, temperature: float) -> str:
    """The batch-mixing rule in words."""
    rule = {"proportional": "proportional sampling (task i with probability n_i / Σ n)",
            "temperature": f"temperature sampling with T={temperature:g} (p_i ∝ n_i^(1/T))",
            "round_robin": "round-robin sampling (the tasks in turn, equal shares)"}[sampling]
    return (f"Batches were mixed by {rule}; every batch holds rows of one task, and the task id routes it to that "
            "task's head on the shared encoder.")


def _task_rows(records: Sequence[TaskRecord], with_results: bool) -> list[list[str]]:
    rows = []
    for r in records:
        dataset = r.dataset + (f" v{r.data_version}" if r.data_version else "")
        row = [f"`{r.name}`", dataset, f"`{r.fingerprint[:12]}`", _labels(r.labels), str(r.train_rows),
               f"{r.probability:.3f}", str(r.blocks)]
        if with_results:
            row += [_number(r.metrics.get("eval_accuracy")), _number(r.metrics.get("test_accuracy"))]
        rows.append(row)
    return rows


def task_section(records: Sequence[TaskRecord], task: str, sampling: str, temperature: float) -> str:
    """The section of one task's card: this head was trained with the others on one encoder."""
    header = ["task", "dataset", "fingerprint", "labels", "train rows", "share of batches", "batches"]
    return (f"This classifier is the `{task}` head of a multi-task run, with the shared encoder it was trained on. "
            f"{sampling_text(sampling, temperature)} The run's tasks:\n\n"
            f"{_table(header, _task_rows(records, with_results=False))}\n\nEvery task's results are in the run's "
            "`multitask_results.json` and card (the folder above `tasks/`). Load this task with "
            f'`tlnlp.load_pipeline(<run folder>, task="{task}")` or as a plain transformers folder.')


def _baseline_text(entries: Sequence[dict[str, Any]]) -> str:
    rows = [[f"`{e['task']}`", e["split"], _number(e["multitask_accuracy"]), _number(e["single_task_accuracy"]),
             f"{e['gain']:+.4f}", str(e["steps"]), "**negative transfer**" if e["negative_transfer"] else "no"]
            for e in entries]
    header = ["task", "split", "multi-task accuracy", "single-task accuracy", "gain", "single-task steps",
              "negative transfer"]
    return ("Each task also trained alone from the same starting model (same method, batch size, learning rate and "
            "seed, as many optimisation steps as it got in the multi-task run; folders `baseline_single_task/`). "
            "Gain = multi-task minus single-task accuracy; negative transfer: the other tasks made this one "
            "worse.\n\n" + _table(header, rows))


def multitask_section(result: MultiTaskResult) -> str:
    """The run card's section: the tasks, their shares and results, the baseline comparison, how to load a task."""
    header = ["task", "dataset", "fingerprint", "labels", "train rows", "share of batches", "batches",
              "validation accuracy", "test accuracy"]
    parts = [f"One encoder (`{result.start_model}`, method `{result.method}`) with one classification head per task, "
             f"trained for {result.steps} optimisation steps. {sampling_text(result.sampling, result.temperature)} "
             f"Target task: `{result.target_task}`.",
             _table(header, _task_rows(result.tasks, with_results=True))]
    if result.baseline:
        parts.append(_baseline_text(result.baseline))
    names = ", ".join(f'"{r.name}"' for r in result.tasks)
    parts.append("Each task's model (the shared encoder with that task's head, its real label names) is a plain "
                 "transformers folder under `tasks/<task>/`, with its own results, predictions and card:\n\n"
                 "```python\nimport tlnlp\n\npipe = tlnlp.load_pipeline(\"<run folder>\", "
                 f"task=\"{result.target_task}\")  # task: one of {names}\n```")
    return "\n\n".join(parts)


def format_summary(result: MultiTaskResult) -> str:
    """A plain-text table of every task's results (and the baseline), for the console."""
    baseline = {e["task"]: e for e in result.baseline or []}
    lines = [f"Multi-task run: {len(result.tasks)} tasks, {result.sampling} sampling, {result.steps} steps, "
             f"{result.seconds:.0f} s",
             f"{'task':<24} {'share':>6} {'batches':>7} {'eval acc':>8} {'test acc':>8}"
             + (f" {'alone':>8} {'gain':>8}" if baseline else "")]
    for r in result.tasks:
        line = (f"{r.name:<24} {r.probability:>6.3f} {r.blocks:>7d} {_number(r.metrics.get('eval_accuracy')):>8} "
                f"{_number(r.metrics.get('test_accuracy')):>8}")
        if r.name in baseline:
            entry = baseline[r.name]
            flag = "  negative transfer" if entry["negative_transfer"] else ""
            line += f" {_number(entry['single_task_accuracy']):>8} {entry['gain']:>+8.4f}{flag}"
        lines.append(line)
    return "\n".join(lines)
