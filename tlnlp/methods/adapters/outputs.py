"""The outputs of an adapter run: base-model name, label config, the merged model, and the card's adapter parts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from tlnlp.models.adapter_io import ADAPTER_CONFIG, merge_adapter, save_task_config, set_base_model_name
from tlnlp.training.resources import resources_section

__all__ = [
    "ADAPTER_DESCRIPTIONS",
    "adapter_card_parts",
    "is_peft_model",
    "prepare_adapter_save",
    "save_adapter_extras",
    "write_merged",
]

logger = logging.getLogger(__name__)

MERGE_TOLERANCE = 1e-4
_MERGE_ROWS = 32

_HEAD = " The backbone stays frozen; the task head is trained in full and saved with the adapter."
#: Card text for each adapter method.
ADAPTER_DESCRIPTIONS = {
    "lora": "LoRA (Hu et al. 2021): trainable low-rank updates B·A are added to the chosen projection weights." + _HEAD,
    "dora": "DoRA (Liu et al. 2024): LoRA on the direction of each weight plus a trainable magnitude vector." + _HEAD,
    "adalora": "AdaLoRA (Zhang et al. 2023): low-rank updates in SVD form whose ranks are pruned during training "
               "towards a budget, keeping rank where it matters most." + _HEAD,
    "ia3": "IA3 (Liu et al. 2022): learned vectors rescale the attention keys and values and the feed-forward "
           "activations." + _HEAD,
    "prompt_tuning": "Prompt tuning (Lester et al. 2021): trainable virtual-token embeddings are prepended to the "
                     "input." + _HEAD,
    "prefix_tuning": "Prefix tuning (Li & Liang 2021): trainable key/value prefixes are prepended in every attention "
                     "layer." + _HEAD,
    "p_tuning": "P-tuning (Liu et al. 2021): virtual-token embeddings produced by a small prompt encoder are "
                "prepended to the input." + _HEAD,
    "loha": "LoHa: low-rank Hadamard-product updates of the chosen projection weights." + _HEAD,
    "lokr": "LoKr: low-rank Kronecker-product updates of the chosen projection weights." + _HEAD,
}


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is a PEFT model (has adapter configs)."""
    return bool(getattr(model, "peft_config", None)) and hasattr(model, "get_base_model")


def prepare_adapter_save(model: Any, base_name: str) -> None:
    """Before saving: record the base model under its public name (a bundled model's Hub id)."""
    set_base_model_name(model, base_name)


def save_adapter_extras(model: Any, out: Path) -> None:
    """After saving the adapter: write ``task_config.json`` (labels, problem type) next to it."""
    save_task_config(model, out)


def _sample_batch(trainer: Any, tokenized: Any) -> tuple[dict[str, torch.Tensor], int]:
    split = next(s for s in ("test", "validation", "train") if s in tokenized)
    rows = tokenized[split].select(range(min(_MERGE_ROWS, len(tokenized[split]))))
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in rows.column_names]
    batch = trainer.data_collator([{k: row[k] for k in keys} for row in rows])
    device = next(trainer.model.parameters()).device
    return {k: v.to(device) for k, v in batch.items() if k in keys}, len(rows)


def write_merged(trainer: Any, tokenized: Any, out: Path) -> dict[str, float]:
    """Merge the adapter into the model (in place), save it to ``out/merged`` and check it predicts the same.

    Call it last: ``trainer.model`` is merged afterwards. The adapter model's and merged model's logits on up to
    32 rows are compared; the largest absolute difference is returned (and written to ``merge_results.json``
    and ``all_results.json``), with a warning above 1e-4.

    Args:
        trainer: The Trainer of the finished adapter run.
        tokenized: The tokenized splits.
        out: The run's output folder.

    Returns:
        ``{"merge_max_abs_logit_diff": float, "merge_checked_rows": int}``.
    """
    batch, rows = _sample_batch(trainer, tokenized)
    model = trainer.model
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits.float()
        merged = merge_adapter(model)
        merged.eval()
        after = merged(**batch).logits.float()
    diff = float((before - after).abs().max())
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


def _adapter_summary(out: Path) -> dict[str, Any]:
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


def _usage(out: Path) -> str:
    name = out.name
    return (
        "This folder holds the adapter, not a full model: `adapter_model.safetensors` (adapter and task head), "
        "`adapter_config.json` (names the base model), `task_config.json` (label names) and the tokenizer.\n\n"
        "```python\nimport tlnlp\n\n"
        f'classifier = tlnlp.load_pipeline("{name}")  # base model + adapter + head, with the label names\n'
        'classifier("a warm, funny and moving film")\n```\n\n'
        "Several adapters over the same base share one model: "
        f'`tlnlp.models.AdapterSet.load({{"this": "{name}", "other": "other_adapter"}}).use("this")`.'
    )


def adapter_card_parts(out: Path, method_args: Any, metrics: dict[str, Any], params: dict[str, Any],
                       description: str | None) -> tuple[str, dict[str, Any], dict[str, str], list[str] | None]:
    """Method description, parameter facts, extra sections and tags for the card of any run.

    Args:
        out: The run's output folder.
        method_args: The run's ``MethodArgs``.
        metrics: All metrics of the run (the resource figures among them).
        params: Parameter counts of the trained model.
        description: The method's description when the method is not an adapter.

    Returns:
        ``(method_description, trainable_parameters, extra_sections, tags)``; every run gets a Resources
        section, adapter runs also the adapter's settings and how to load it.
    """
    method = method_args.method
    sections = {"Resources": resources_section(metrics)}
    adapter = (out / ADAPTER_CONFIG).is_file()
    if not adapter:
        return description or method, params, sections, None
    sections["Using this adapter"] = _usage(out)
    facts = {**params, **_adapter_summary(out)}
    return ADAPTER_DESCRIPTIONS.get(method, description or method), facts, sections, ["peft", "adapter"]
