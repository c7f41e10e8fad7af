"""TRANSITIONAL (issue 14): the old adapter-output helpers of ``finish_run``/``finish_qa_run``, over the method hooks.

Delete this module once :func:`tlnlp.outputs.finish` replaces ``tlnlp.training.run`` and ``tlnlp.training.qa_run``;
the hooks themselves live in :mod:`tlnlp.methods.adapters` (``before_save``, ``after_save``, ``save_outputs``,
``card_parts``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tlnlp.methods import METHODS
from tlnlp.methods.adapters.outputs import is_peft_model, write_merged
from tlnlp.models.adapter_io import ADAPTER_CONFIG, save_task_config, set_base_model_name
from tlnlp.training.resources import resources_section

__all__ = ["adapter_card_parts", "is_peft_model", "prepare_adapter_save", "save_adapter_extras", "write_merged"]


def prepare_adapter_save(model: Any, base_name: str) -> None:
    """Before saving: record the base model under its public name (a bundled model's Hub id)."""
    set_base_model_name(model, base_name)


def save_adapter_extras(model: Any, out: Path) -> None:
    """After saving the adapter: write ``task_config.json`` (labels, problem type) next to it."""
    save_task_config(model, out)


def adapter_card_parts(out: Path, method_args: Any, metrics: dict[str, Any], params: dict[str, Any],
                       description: str | None) -> tuple[str, dict[str, Any], dict[str, str], list[str] | None]:
    """Method description, parameter facts, extra sections and tags for the card of any run."""
    sections = {"Resources": resources_section(metrics)}
    if not (out / ADAPTER_CONFIG).is_file():
        return description or method_args.method, params, sections, None
    parts = METHODS.get(method_args.method).card_parts(method_args, out, None, params)
    return parts.description or method_args.method, parts.params, {**sections, **parts.sections}, parts.tags
