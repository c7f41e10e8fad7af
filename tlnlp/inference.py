"""Load a finished run's output folder for inference."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["load_pipeline"]

logger = logging.getLogger(__name__)


def load_pipeline(output_dir: str | Path, device: int | str | None = None, **kwargs: Any) -> Any:
    """A transformers pipeline over a run's saved model, with the run's real label names.

    Args:
        output_dir: Output folder of a tlnlp run (or any folder ``from_pretrained`` reads).
        device: Passed to ``transformers.pipeline`` (default: CPU, or the first GPU if one is present).
        **kwargs: Other ``transformers.pipeline`` arguments.

    Returns:
        A ``text-classification`` pipeline; multi-label runs score each label with a sigmoid, and inputs are
        truncated to the run's ``max_seq_length`` as in training.

    Raises:
        FileNotFoundError: ``output_dir`` holds no saved model.
    """
    from transformers import AutoConfig, pipeline

    folder = Path(output_dir)
    if folder.exists() and not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} holds no saved model (no config.json). Give the output_dir of a finished run; a run still "
            "training keeps its checkpoints in checkpoint-* subfolders."
        )
    source = str(folder) if folder.exists() else str(output_dir)  # else: a Hub repo id
    config = AutoConfig.from_pretrained(source)
    if config.problem_type == "multi_label_classification":
        kwargs.setdefault("function_to_apply", "sigmoid")
    run_config = folder / "run_config.yaml"
    if run_config.is_file() and "max_length" not in kwargs:
        import yaml

        max_len = (yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}).get("max_seq_length")
        if max_len:  # inputs are cut where training cut them
            kwargs.setdefault("truncation", True)
            kwargs["max_length"] = int(max_len)
    env = folder / "environment.json"
    if env.is_file():
        labels = json.loads(env.read_text(encoding="utf-8")).get("labels")
        if labels and [config.id2label[i] for i in range(len(labels))] != labels:
            logger.warning("Label names in config.json differ from the run's labels in environment.json.")
    return pipeline("text-classification", model=source, tokenizer=source, device=device, **kwargs)
