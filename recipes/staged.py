"""Staged (intermediate-task) transfer: a chain of fine-tuning stages, each starting from the model of the one before.

    accelerate launch --config_file recipes/accelerate/cpu_1proc.yaml recipes/staged.py \
        --config recipes/configs/staged/amazon_to_movie_minilm.yaml

Stages are ``--stages`` (or ``stages:`` in the YAML), in order. Each is comma-separated ``key=value`` pairs, or in
YAML a mapping::

    stages:
      - dataset=bundled:amazon_sentiment,method=full,epochs=1,learning_rate=5e-5,max_train_samples=1500
      - {dataset: bundled:movie_sentiment, train_samples_per_class: 8, epochs: 10}

A stage's keys: its data (``dataset`` or ``train_file`` and any other data flag of recipes/classification.py:
``train_samples_per_class``, ``max_train_samples``, ``text_column``...), its method (``method`` and any method
option), its budget (``epochs``, ``learning_rate``, ``max_steps``, batch size, warm-up, evaluation and checkpoint
steps), ``new_head: true`` (a new head even when the labels are the previous stage's) and ``name`` (its folder:
``stage<i>_<name>``). A key left out takes the chain's value: the top-level flag of the same name. The first stage
starts from ``--model_name_or_path`` (a model, or any run folder, e.g. one of recipes/classification.py); each next
stage from the stage before, keeping its head when the labels are unchanged and getting a new head otherwise.

Chain flags: ``--rehearsal_samples N`` (N seeded rows of the previous stage's training rows mixed into the next
stage; same labels needed), ``--baseline target_only`` (also train the last stage's data alone from the starting
model and flag negative transfer), ``--resume_from_checkpoint last`` (skip finished stages, resume the interrupted
one from its newest checkpoint). Every flag overrides the YAML file; ``--help`` lists them all.

``--hp_search optuna`` searches the last (target) stage: the earlier stages run once with their settings, then
every trial trains the last stage from the previous stage's model and is scored on its validation split, and the
last stage trains with the best values. ``hp_search/best_config.yaml`` reruns the best trial as a one-stage chain
from the previous stage's folder. Rerunning the same command after an interruption continues the search without
training the earlier stages again.

Writes into ``--output_dir``: one run folder per stage (the last one holds the final model, whose card has a
"Staged transfer" section with the whole chain), ``baseline_target_only/``, ``hp_search/``, ``staged_results.json``
(every stage's record and results, forgetting, the baseline comparison) and ``staged_summary.md``.
"""

from __future__ import annotations

from tlnlp.config import ModelArgs, TrainingArgs, parse_args
from tlnlp.errors import user_errors
from tlnlp.methods import MethodArgs
from tlnlp.search import SEARCH_FOLDER, HpSearchArgs, check_search, search_hook
from tlnlp.staged import StagedArgs, format_summary, run_stages
from tlnlp.training import refuse_evaluation_only, setup_logging

#: The argument dataclasses this recipe parses (its flags and YAML keys), in ``main``'s order.
ARGUMENTS = (ModelArgs, MethodArgs, StagedArgs, TrainingArgs, HpSearchArgs)
#: Defaults this recipe changes (a flag or YAML key still overrides them).
DEFAULTS: dict[str, object] = {}


def main(model_args: ModelArgs, method_args: MethodArgs, staged_args: StagedArgs,
         train_args: TrainingArgs, hp_args: HpSearchArgs | None = None) -> dict[str, float]:
    """Run (or resume) the chain; returns ``stage<i>_*``, ``final_*``, forgetting, baseline and ``hp_search_*``."""
    setup_logging(train_args)
    refuse_evaluation_only(train_args, 'staged')  # this recipe always trains
    check_search(hp_args, train_args)  # with --hp_search: one process, the back end installed, before any work
    search = search_hook(hp_args, "staged", (model_args, method_args, staged_args, train_args))
    result = run_stages(model_args, method_args, staged_args, train_args, search=search,
                        search_folder=SEARCH_FOLDER)  # the last stage searched, after the others
    if train_args.process_index == 0:
        print(format_summary(result))
        print(f"Every stage's folder, staged_results.json and staged_summary.md in {train_args.output_dir}")
    return result.metrics()


if __name__ == "__main__":
    with user_errors():
        main(*parse_args(*ARGUMENTS, defaults=DEFAULTS))
