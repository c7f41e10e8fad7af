"""Multi-task learning: one shared encoder, one classification head per task, trained together with the Trainer.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/multitask.py \
        --config recipes/configs/multitask/sentiment_minilm.yaml

Tasks are ``--tasks`` (or ``tasks:`` in the YAML), one item each: comma-separated ``key=value`` pairs, or in YAML a
mapping::

    tasks:
      - dataset=bundled:movie_sentiment,train_samples_per_class=8
      - {dataset: bundled:amazon_sentiment, max_train_samples: 1000, name: amazon}

A task's keys are the data flags of recipes/classification.py (``dataset`` or ``train_file``, ``text_column``,
``train_samples_per_class``, ``max_train_samples``, ``max_eval_samples``...; not ``max_seq_length``, which the one
encoder shares) and ``name`` (its metric keys and folder; default: the dataset's name). Every task gets its own head
with its own labels (single-label classification; question answering is not a task here).

Batches hold rows of one task; ``--sampling`` picks the task of each batch: ``proportional`` (p_i ∝ n_i),
``temperature`` (p_i ∝ n_i^(1/T), ``--temperature T``) or ``round_robin``. ``--method`` is ``full``,
``frozen_backbone`` or ``lora``. ``--baseline single_task`` also trains each task alone (same settings, as many steps
as it got here) and flags negative transfer per task. ``--resume_from_checkpoint last`` continues an interrupted run.
Every flag overrides the YAML file; every ``transformers.TrainingArguments`` flag works unchanged.

``--hp_search optuna`` searches first: each trial builds the multi-task model, its sampler and Trainer as the run
does, and is scored on the mean over the tasks of their validation metric (``eval_accuracy``, or the metric
``--metric_for_best_model`` names, e.g. ``<task>_accuracy``); the run then trains with the best values, and
``hp_search/best_config.yaml`` reruns the best trial. Rerunning the same command after an interruption continues it.

Writes into ``--output_dir``: ``tasks/<task>/`` per task (a plain transformers classifier folder with its results,
predictions and card: ``tlnlp.load_pipeline(output_dir, task="<task>")``), ``multitask_results.json`` (every task's
validation and test metrics, shares of batches, the baseline comparison), ``all_results.json`` (``eval_<task>_*``,
``test_<task>_*`` and their means), ``run_config.yaml``, ``environment.json`` and the run's card ``README.md``.
"""

from __future__ import annotations

from tlnlp.config import ModelArgs, TrainingArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs
from tlnlp.multitask import MultiTaskArgs, format_summary, run_multitask
from tlnlp.search import SEARCH_FOLDER, HpSearchArgs, check_search, search_hook
from tlnlp.training import refuse_evaluation_only, setup_logging

#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, MethodArgs, MultiTaskArgs, TrainingArgs, HpSearchArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, method_args: MethodArgs, mt_args: MultiTaskArgs,
         train_args: TrainingArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Train (or resume) the multi-task model; returns ``train_*``, ``eval_<task>_*``, ``test_<task>_*``, means."""
    setup_logging(train_args)
    refuse_evaluation_only(train_args, 'multitask')  # this recipe always trains
    check_search(hp_args, train_args)  # with --hp_search: one process, the back end installed, before any work
    search = search_hook(hp_args, "multitask", (model_args, method_args, mt_args, train_args))
    result = run_multitask(model_args, method_args, mt_args, train_args, search=search, search_folder=SEARCH_FOLDER)
    if train_args.process_index == 0:
        print(format_summary(result))
        print(f"Every task's model folder, multitask_results.json and the card in {train_args.output_dir}")
    return result.metrics()


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
