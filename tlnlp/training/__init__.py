"""Training: a transformers ``Trainer`` that runs the methods' hooks, the output-folder guard and logging set-up."""

from tlnlp.training.logs import setup_logging
from tlnlp.training.stages import (
    RunStages,
    StageError,
    only_requested_splits,
    refuse_evaluation_only,
    refuse_long_text_chunk,
    requested_stages,
)
from tlnlp.training.trainer import OutputDirError, TlnlpTrainer, build_trainer, pad_multiple, prepare_output_dir

__all__ = ["OutputDirError", "RunStages", "StageError", "TlnlpTrainer", "build_trainer", "pad_multiple",
           "prepare_output_dir", "only_requested_splits", "refuse_evaluation_only", "refuse_long_text_chunk",
           "requested_stages", "setup_logging"]
