"""Staged (intermediate-task) transfer: a chain of fine-tuning stages, each starting from the model of the one before.

=================  ==================================================================================================
module             what it holds
=================  ==================================================================================================
``args``           :class:`StagedArgs`: ``--stages``, ``--rehearsal_samples``, ``--baseline``, shared data settings
``spec``           :class:`StageSpec` and :func:`build_stage_specs`: each stage parsed and checked like a recipe's flags
``heads``          where a stage starts: the previous model, its head kept, reordered or new
``data``           label spaces between stages, and rehearsal rows
``stage``          one stage's run, written by :func:`tlnlp.runs.finish`
``resume``         the output-folder guard and where an interrupted chain resumes
``forgetting``     the final model on earlier stages' splits; the target-only baseline comparison
``search``         the last stage's hyperparameter search (through a hook) and its one-stage best config
``card``           the card's "Staged transfer" section and the printed summary
``runner``         :func:`run_stages`
=================  ==================================================================================================
"""

from tlnlp.staged.args import BASELINES, StagedArgs
from tlnlp.staged.card import SECTION_TITLE, format_summary, replace_section, staged_section
from tlnlp.staged.data import check_rehearsal, mix_rehearsal, same_label_space
from tlnlp.staged.forgetting import NOT_MEASURABLE, compare_with_baseline, measure_forgetting, score_split
from tlnlp.staged.heads import checkpoint_labels, head_plan, load_stage_model, reset_head, stage_model_path
from tlnlp.staged.records import RECORD_FILE, StagedResult, StageRecord, read_record
from tlnlp.staged.resume import PLAN_FILE, ResumePoint, resolve_resume
from tlnlp.staged.runner import BASELINE_DIR, RESULTS_FILE, run_stages
from tlnlp.staged.search import best_stage_config, search_last_stage
from tlnlp.staged.spec import StageOptions, StageSpec, StageSpecError, build_stage_specs, parse_stage_item

__all__ = [
    "BASELINES",
    "BASELINE_DIR",
    "NOT_MEASURABLE",
    "PLAN_FILE",
    "RECORD_FILE",
    "RESULTS_FILE",
    "SECTION_TITLE",
    "ResumePoint",
    "StageOptions",
    "StageRecord",
    "StageSpec",
    "StageSpecError",
    "StagedArgs",
    "StagedResult",
    "best_stage_config",
    "build_stage_specs",
    "check_rehearsal",
    "checkpoint_labels",
    "compare_with_baseline",
    "format_summary",
    "head_plan",
    "load_stage_model",
    "measure_forgetting",
    "mix_rehearsal",
    "parse_stage_item",
    "read_record",
    "replace_section",
    "reset_head",
    "resolve_resume",
    "run_stages",
    "same_label_space",
    "score_split",
    "search_last_stage",
    "stage_model_path",
    "staged_section",
]
