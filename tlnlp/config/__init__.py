"""Configuration: argument dataclasses and the ``--config`` YAML + flags parser."""

from tlnlp.config.args import DataArgs, EvaluationArgs, MethodArgs, ModelArgs, TrainingArgs
from tlnlp.config.parser import (
    TLNLP_TRAINING_DEFAULTS,
    ConfigError,
    parse_args,
    resolved_config,
    write_run_config,
)
from tlnlp.config.qa_args import QAArgs

__all__ = [
    "TLNLP_TRAINING_DEFAULTS",
    "ConfigError",
    "DataArgs",
    "EvaluationArgs",
    "MethodArgs",
    "ModelArgs",
    "QAArgs",
    "TrainingArgs",
    "parse_args",
    "resolved_config",
    "write_run_config",
]
