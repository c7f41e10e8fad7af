"""Load a finished run's output folder for inference."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["load_pipeline"]

logger = logging.getLogger(__name__)


def _adapter_folder(output_dir: str | Path) -> Path | None:
    """The local folder of an adapter (downloading a Hub adapter repo), or None when it is no adapter."""
    from tlnlp.models import is_adapter_dir

    folder = Path(output_dir)
    if folder.exists():
        return folder if is_adapter_dir(folder) else None
    if str(output_dir).count("/") != 1:
        return None
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        hf_hub_download(str(output_dir), "adapter_config.json")
    except Exception:  # noqa: BLE001 - not an adapter repo (or unreachable): the ordinary path reports it
        return None
    return Path(snapshot_download(str(output_dir), allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model",
                                                                     "*.yaml"]))


def _truncation(folder: Path, kwargs: dict[str, Any]) -> None:
    run_config = folder / "run_config.yaml"
    if run_config.is_file() and "max_length" not in kwargs:
        import yaml

        max_len = (yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}).get("max_seq_length")
        if max_len:  # inputs are cut where training cut them
            kwargs.setdefault("truncation", True)
            kwargs["max_length"] = int(max_len)


def _is_question_answering(config: Any) -> bool:
    return any("ForQuestionAnswering" in name for name in (getattr(config, "architectures", None) or []))


def _qa_pipeline(model: Any, tokenizer: Any, folder: Path, device: int | str | None, kwargs: dict[str, Any]) -> Any:
    """A question-answering pipeline with the run's window and answer settings (from run_config.yaml)."""
    from tlnlp.tasks.qa.pipeline import QuestionAnsweringPipeline

    run_config = folder / "run_config.yaml"
    if run_config.is_file():
        import yaml

        saved = yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}
        for name in ("max_seq_length", "doc_stride", "n_best_size", "max_answer_length", "version_2_with_negative",
                     "null_score_diff_threshold"):
            if saved.get(name) is not None:
                kwargs.setdefault(name, saved[name])
    return QuestionAnsweringPipeline(model, tokenizer, device=device, **kwargs)


def _adapter_pipeline(folder: Path, device: int | str | None, kwargs: dict[str, Any]) -> Any:
    from transformers import pipeline

    from tlnlp.models import load_adapter_model

    model, tokenizer = load_adapter_model(folder)
    config = model.get_base_model().config
    qa_head = "ForQuestionAnswering" in type(model.get_base_model()).__name__  # the loaded head, not the base's
    task = "question-answering" if qa_head or _is_question_answering(config) else "text-classification"
    if config.problem_type == "multi_label_classification":
        kwargs.setdefault("function_to_apply", "sigmoid")
    # LoRA-family adapters live inside the base model's layers, so the plain transformers model runs them;
    # prompt-learning adapters need the PEFT wrapper, which prepends the virtual tokens
    runnable = model if model.active_peft_config.is_prompt_learning else model.get_base_model()
    if task == "question-answering":
        from tlnlp.models.qa import fix_peft_question_answering

        return _qa_pipeline(fix_peft_question_answering(runnable), tokenizer, folder, device, kwargs)
    _truncation(folder, kwargs)
    return pipeline(task, model=runnable, tokenizer=tokenizer, device=device, **kwargs)


def load_pipeline(output_dir: str | Path, device: int | str | None = None, **kwargs: Any) -> Any:
    """A transformers pipeline over a run's saved model, with the run's real label names.

    An adapter run's folder (``adapter_config.json``, no full weights) loads its base model, the adapter and
    the saved head with the run's label names (:func:`tlnlp.models.load_adapter_model`); so does a Hub repo
    holding such an adapter.

    Args:
        output_dir: Output folder of a tlnlp run (or any folder ``from_pretrained`` reads), or a Hub repo id.
        device: Passed to ``transformers.pipeline`` (default: CPU, or the first GPU if one is present).
        **kwargs: Other ``transformers.pipeline`` arguments.

    Returns:
        A ``text-classification`` pipeline; multi-label runs score each label with a sigmoid, and inputs are
        truncated to the run's ``max_seq_length`` as in training. A question-answering run gives a
        :class:`tlnlp.tasks.qa.pipeline.QuestionAnsweringPipeline` with the run's window and answer settings
        (it answers as the run's ``predictions.json`` does).

    Raises:
        FileNotFoundError: ``output_dir`` holds no saved model.
    """
    from transformers import AutoConfig, pipeline

    folder = _adapter_folder(output_dir)
    if folder is not None:
        return _adapter_pipeline(folder, device, kwargs)
    folder = Path(output_dir)
    if folder.exists() and not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} holds no saved model (no config.json). Give the output_dir of a finished run; a run still "
            "training keeps its checkpoints in checkpoint-* subfolders."
        )
    source = str(folder) if folder.exists() else str(output_dir)  # else: a Hub repo id
    config = AutoConfig.from_pretrained(source)
    if _is_question_answering(config):
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        model = AutoModelForQuestionAnswering.from_pretrained(source, use_safetensors=True)
        return _qa_pipeline(model, AutoTokenizer.from_pretrained(source), folder, device, kwargs)
    if config.problem_type == "multi_label_classification":
        kwargs.setdefault("function_to_apply", "sigmoid")
    _truncation(folder, kwargs)
    env = folder / "environment.json"
    if env.is_file():
        labels = json.loads(env.read_text(encoding="utf-8")).get("labels")
        if labels and [config.id2label[i] for i in range(len(labels))] != labels:
            logger.warning("Label names in config.json differ from the run's labels in environment.json.")
    return pipeline("text-classification", model=source, tokenizer=source, device=device, **kwargs)
