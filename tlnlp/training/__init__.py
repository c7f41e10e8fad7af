"""Training: a transformers ``Trainer`` that runs the methods' hooks, the output-folder guard and logging set-up."""

from tlnlp.training.logs import setup_logging
from tlnlp.training.trainer import OutputDirError, TlnlpTrainer, build_trainer, prepare_output_dir

__all__ = ["OutputDirError", "TlnlpTrainer", "build_trainer", "prepare_output_dir", "setup_logging"]
