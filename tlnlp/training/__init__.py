"""Training: build a Trainer for a task and write every output of a run."""

from tlnlp.training.evaluation import finish_evaluation
from tlnlp.training.lm_run import finish_lm_run, run_lm_adaptation
from tlnlp.training.logs import setup_logging
from tlnlp.training.outputs import environment_info, format_metrics_table, reproduce_command, write_predictions
from tlnlp.training.run import finish_run
from tlnlp.training.trainer import OutputDirError, TlnlpTrainer, build_trainer, prepare_output_dir

__all__ = [
    "OutputDirError",
    "TlnlpTrainer",
    "build_trainer",
    "environment_info",
    "finish_evaluation",
    "finish_lm_run",
    "finish_run",
    "format_metrics_table",
    "prepare_output_dir",
    "reproduce_command",
    "run_lm_adaptation",
    "setup_logging",
    "write_predictions",
]
