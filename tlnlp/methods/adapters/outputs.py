"""What an adapter run leaves behind: the merged model and its logit check, the card's adapter parts, the reload.

An adapter run's folder holds the adapter (``adapter_model.safetensors`` with the head, ``adapter_config.json``
naming the base model by its public name), ``task_config.json`` (labels, problem type) and the tokenizer; with
``--merge_adapter`` also ``merged/``, a full model with the adapter folded in. The files themselves are written by
:mod:`tlnlp.models.adapter_io`; this module decides what an adapter run writes and how the card describes it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from tlnlp.models.adapter_io import ADAPTER_CONFIG, is_adapter_dir, load_adapter_model, merge_adapter

__all__ = ["MERGE_TOLERANCE", "adapter_facts", "adapter_usage", "is_peft_model", "reload_adapter", "write_merged"]

logger = logging.getLogger(__name__)

#: Largest logit difference between the adapter model and the merged model that passes without a warning.
MERGE_TOLERANCE = 1e-4
_MERGE_ROWS = 32
_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a PEFT model (has adapter configs)."""
    return bool(getattr(model, "peft_config", None)) and hasattr(model, "get_base_model")


def _sample_batch(trainer: Any, datasets: Any) -> tuple[dict[str, torch.Tensor], int]:
    split = next(s for s in ("test", "validation", "train") if s in datasets)
    rows = datasets[split].select(range(min(_MERGE_ROWS, len(datasets[split]))))
    keys = [k for k in _INPUT_KEYS if k in rows.column_names]
    batch = trainer.data_collator([{k: row[k] for k in keys} for row in rows])
    device = next(trainer.model.parameters()).device
    return {k: v.to(device) for k, v in batch.items() if k in keys}, len(rows)


def _logits(output: Any) -> list[torch.Tensor]:
    """Every logits tensor of a model output (``logits``; ``start_logits`` and ``end_logits`` for QA)."""
    return [value.float() for key, value in output.items() if key.endswith("logits") and torch.is_tensor(value)]


def write_merged(trainer: Any, datasets: Any, out: Path) -> dict[str, float]:
    """Merge the adapter into the model (in place), save it to ``out/merged`` and check it predicts the same.

    Call it last: ``trainer.model`` is merged afterwards. The adapter model's and merged model's logits (every
    ``*logits`` output: class logits, or a QA model's start and end logits) on up to 32 rows of the first of the
    test, validation and train splits are compared; the largest absolute difference is returned (and written to
    ``merge_results.json`` and ``all_results.json``), with a warning above 1e-4.

    Args:
        trainer: The Trainer of the finished adapter run.
        datasets: The tokenized splits.
        out: The run's output folder.

    Returns:
        ``{"merge_max_abs_logit_diff": float, "merge_checked_rows": int}``.
    """
    batch, rows = _sample_batch(trainer, datasets)
    model = trainer.model
    model.eval()
    with torch.no_grad():
        before = _logits(model(**batch))
        merged = merge_adapter(model)
        merged.eval()
        after = _logits(merged(**batch))
    diff = max(float((b - a).abs().max()) for b, a in zip(before, after, strict=True))
    folder = out / "merged"
    merged.save_pretrained(folder)
    if trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(folder)
    if diff > MERGE_TOLERANCE:
        logger.warning("The merged model's logits differ from the adapter model's by up to %.2e (> %.0e).",
                       diff, MERGE_TOLERANCE)
    logger.info("Merged model written to %s (max logit difference %.2e on %d rows).", folder, diff, rows)
    result = {"merge_max_abs_logit_diff": diff, "merge_checked_rows": rows}
    trainer.save_metrics("merge", result)
    return result


def adapter_facts(out: Path) -> dict[str, Any]:
    """The saved adapter's settings for the card (PEFT type, base model, ranks, targets...); empty without one."""
    path = out / ADAPTER_CONFIG
    if not path.is_file():
        return {}
    config = json.loads(path.read_text(encoding="utf-8"))
    summary = {"PEFT type": config.get("peft_type"), "base model": config.get("base_model_name_or_path")}
    for key in ("r", "lora_alpha", "init_r", "target_r", "alpha", "num_virtual_tokens", "target_modules",
                "modules_to_save"):
        if config.get(key) is not None:
            summary[key] = config[key]
    return summary


def adapter_usage(out: Path, example: str | None = None) -> str:
    """The card's "Using this adapter" section: what the folder holds and how to load it.

    Args:
        out: The run's folder.
        example: A call of the loaded pipeline ``pipe`` for the run's task (e.g. ``pipe("A short text.")``).
    """
    name = out.name
    call = f"{example}\n" if example else ""
    return (
        "This folder holds the adapter, not a full model: `adapter_model.safetensors` (adapter and task head), "
        "`adapter_config.json` (names the base model), `task_config.json` (label names) and the tokenizer.\n\n"
        "```python\nimport tlnlp\n\n"
        f'pipe = tlnlp.load_pipeline("{name}")  # base model + adapter + head, set up as the run was\n'
        f"{call}```\n\n"
        "Several adapters over the same base share one model: "
        f'`tlnlp.models.AdapterSet.load({{"this": "{name}", "other": "other_adapter"}}).use("this")`.'
    )


def reload_adapter(folder: Path) -> tuple[Any, Any] | None:
    """The runnable model and tokenizer of a saved adapter run, or None when ``folder`` holds no adapter.

    LoRA-family adapters live inside the base model's layers, so the plain transformers model (adapter and
    trained head in place, label names from ``task_config.json``) runs them; prompt-learning adapters need the
    PEFT wrapper, which prepends the virtual tokens.

    Args:
        folder: A local folder.

    Returns:
        ``(model, tokenizer)`` in eval mode, or None.
    """
    if not is_adapter_dir(folder):
        return None
    model, tokenizer = load_adapter_model(folder)
    runnable = model if model.active_peft_config.is_prompt_learning else model.get_base_model()
    return runnable, tokenizer
