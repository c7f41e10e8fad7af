"""Configuration: argument dataclasses and the ``--config`` YAML + flags parser (method flags: tlnlp.methods)."""

from tlnlp.config.args import DataArgs, EvaluationArgs, ModelArgs, TrainingArgs
from tlnlp.config.hub_token import HubTokenError, require_token
from tlnlp.config.launch import current_launch, rerun_command, set_launch
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
    "HubTokenError",
    "ModelArgs",
    "QAArgs",
    "TrainingArgs",
    "current_launch",
    "parse_args",
    "require_token",
    "rerun_command",
    "resolved_config",
    "set_launch",
    "write_run_config",
]
