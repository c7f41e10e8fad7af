"""Logging set-up for recipes and command-line tools (never called on import)."""

from __future__ import annotations

import logging

import datasets
import transformers
from transformers import TrainingArguments

__all__ = ["setup_logging"]


def setup_logging(train_args: TrainingArguments | None = None) -> None:
    """Show tlnlp's INFO lines on the main process only; other processes log warnings and errors only.

    Call it once at the top of a recipe's ``main`` (the library itself never configures logging).
    """
    main = train_args is None or train_args.should_log
    level = logging.INFO if main else logging.WARNING
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S", level=level)
    logging.getLogger("tlnlp").setLevel(level)
    transformers.utils.logging.set_verbosity(logging.WARNING)
    datasets.utils.logging.set_verbosity(logging.WARNING)
    if not main:
        datasets.disable_progress_bars()
    reason = getattr(train_args, "_tlnlp_bf16_reason", None)
    if reason is not None:  # what --bf16 auto chose, said once the log is set up
        logging.getLogger(__name__).info("bf16 auto: %s (%s)", "on" if train_args.bf16 else "off", reason)
