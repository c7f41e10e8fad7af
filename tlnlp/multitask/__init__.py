"""Multi-task learning: one shared encoder, one classification head per task, batches of one task mixed by a sampler.

=================  ==================================================================================================
module             what it holds
=================  ==================================================================================================
``spec``           :class:`TaskSpec` and :func:`build_task_specs`: each task parsed and checked like a recipe's flags
``args``           :class:`MultiTaskArgs`: ``--tasks``, ``--sampling``, ``--temperature``, ``--baseline``...
``sampler``        :class:`MultiTaskSampler`: blocks of one task (proportional, temperature, round-robin)
``data``           every task's data loaded and checked; :class:`MultiTaskDataset` (rows with their task id)
``model``          :class:`MultiTaskClassifier`: the shared encoder, a head per task, a task's standalone classifier
``methods``        ``full``, ``frozen_backbone`` and ``lora`` on the multi-task model
``trainer``        :class:`MultiTaskTrainer`: the sampler and per-task evaluation on tlnlp's Trainer
``resume``         the output-folder guard and the settings a resumed run must match
``results``        :class:`TaskRecord`, :class:`MultiTaskResult`, the single-task comparison
``card``           the cards' "Multi-task learning" section and the printed summary
``outputs``        every task's folder (through ``finish``) and the run's own files
``runner``         :func:`run_multitask`
=================  ==================================================================================================
"""

from tlnlp.multitask.args import BASELINES, MultiTaskArgs
from tlnlp.multitask.card import SECTION_TITLE, format_summary, multitask_section, task_section
from tlnlp.multitask.data import MultiTaskDataset, check_task_data, load_tasks
from tlnlp.multitask.methods import MULTITASK_METHODS, check_multitask_method, prepare_multitask_method
from tlnlp.multitask.model import MultiTaskClassifier, build_multitask_model
from tlnlp.multitask.results import RESULTS_FILE, MultiTaskResult, TaskRecord, compare_with_single_task
from tlnlp.multitask.resume import PLAN_FILE, resolve_resume
from tlnlp.multitask.runner import BASELINE_DIR, run_multitask
from tlnlp.multitask.sampler import SAMPLING, MultiTaskSampler, block_counts, task_probabilities, task_steps
from tlnlp.multitask.spec import TaskSpec, TaskSpecError, build_task_specs, parse_task_item
from tlnlp.multitask.trainer import MultiTaskTrainer, SamplingSettings, build_multitask_trainer, task_means

__all__ = [
    "BASELINES",
    "BASELINE_DIR",
    "MULTITASK_METHODS",
    "PLAN_FILE",
    "RESULTS_FILE",
    "SAMPLING",
    "SECTION_TITLE",
    "MultiTaskArgs",
    "MultiTaskClassifier",
    "MultiTaskDataset",
    "MultiTaskResult",
    "MultiTaskSampler",
    "MultiTaskTrainer",
    "SamplingSettings",
    "TaskRecord",
    "TaskSpec",
    "TaskSpecError",
    "block_counts",
    "build_multitask_model",
    "build_multitask_trainer",
    "build_task_specs",
    "check_multitask_method",
    "check_task_data",
    "compare_with_single_task",
    "format_summary",
    "load_tasks",
    "multitask_section",
    "parse_task_item",
    "prepare_multitask_method",
    "resolve_resume",
    "run_multitask",
    "task_means",
    "task_probabilities",
    "task_section",
    "task_steps",
]
