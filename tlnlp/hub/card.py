"""Model cards for trained runs, built on :class:`huggingface_hub.ModelCard`.

The metadata (base model, datasets, language, licence, tags, ``model-index`` with evaluation results) goes
through :class:`huggingface_hub.ModelCardData` and :class:`huggingface_hub.EvalResult`, so the Hub parses it
as it parses any card; the markdown body is written here. Secrets never reach a card (:mod:`tlnlp.hub.secrets`):
keys that name a token or password are dropped from hyperparameters, the matching flags are removed from the
command, and anything shaped like a Hugging Face access token is redacted from the final text.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from tlnlp.assets import BUNDLED_MODELS, BUNDLED_PREFIX
from tlnlp.hub.secrets import redact_tokens, scrub_command, scrub_secrets
from tlnlp.tasks import pipeline_tag_for

__all__ = ["EVALUATION_ONLY_TAG", "CardSpec", "build_model_card", "hub_base_model"]

logger = logging.getLogger(__name__)

_SPLITS = {"test": "test", "eval": "validation", "train": "train", "predict": "test"}
#: metric name (without split prefix) -> (Hub metric type, metric config, display name)
_METRICS: dict[str, tuple[str, str | None, str]] = {
    "accuracy": ("accuracy", None, "Accuracy"),
    "f1": ("f1", None, "F1"),
    "f1_macro": ("f1", "macro", "F1 (macro)"),
    "f1_micro": ("f1", "micro", "F1 (micro)"),
    "f1_weighted": ("f1", "weighted", "F1 (weighted)"),
    "precision_macro": ("precision", "macro", "Precision (macro)"),
    "precision_micro": ("precision", "micro", "Precision (micro)"),
    "recall_macro": ("recall", "macro", "Recall (macro)"),
    "recall_micro": ("recall", "micro", "Recall (micro)"),
    "mcc": ("matthews_correlation", None, "Matthews correlation"),
    "hamming_loss": ("hamming_loss", None, "Hamming loss"),
    "exact_match": ("exact_match", None, "Exact match"),
    "exact": ("exact_match", None, "Exact match"),
    "perplexity": ("perplexity", None, "Perplexity"),
    "pseudo_perplexity": ("perplexity", "pseudo", "Pseudo-perplexity"),
}
_HEADLINE = {"accuracy": "accuracy", "f1_macro": "macro-F1", "f1": "F1", "exact_match": "exact match"}
_NOT_QUALITY = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch", "flos", "memory", "samples",
                "parameters")
#: a tag that marks a results card: the run scored a model without training it
EVALUATION_ONLY_TAG = "no-training"


def _looks_like_path(value: str) -> bool:
    """True for strings that name a local file or folder rather than a Hub id."""
    return (value.startswith(("/", "~", "./", "../", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))
            or os.path.exists(value))


def _public_name(value: str) -> str:
    """A name safe to publish: a local path is reduced to its last component."""
    if not _looks_like_path(value):
        return value
    return Path(os.path.expanduser(value)).name or value


def hub_base_model(base_model: str) -> str | None:
    """The Hub id to record as ``base_model``, or None when there is none.

    Args:
        base_model: ``bundled:<name>`` (mapped to its Hub id via :data:`tlnlp.assets.BUNDLED_MODELS`), a Hub
            id (``org/name`` or a legacy ``name``), or a local path.

    Returns:
        The Hub id, or None for a local path, an unknown bundled name or a malformed id.
    """
    if base_model.startswith(BUNDLED_PREFIX):

        bundled = BUNDLED_MODELS.get(base_model[len(BUNDLED_PREFIX):])
        if bundled is None:
            logger.warning("Unknown bundled model %r; the card records no base_model. Known: %s", base_model,
                           ", ".join(BUNDLED_PREFIX + name for name in BUNDLED_MODELS))
            return None
        return bundled.hub_id
    if _looks_like_path(base_model) or base_model.count("/") > 1:
        return None
    try:
        validate_repo_id(base_model)
    except HFValidationError:
        return None
    return base_model


def _base_license(hub_id: str | None) -> str | None:
    """The licence of a base model tlnlp knows (the bundled ones, by their Hub id), else None."""
    return next((model.license for model in BUNDLED_MODELS.values() if hub_id and model.hub_id == hub_id), None)


def _split_metric(key: str) -> tuple[str | None, str]:
    """``test_f1_macro`` -> ("test", "f1_macro"); keys without a split prefix -> (None, key)."""
    prefix, _, rest = key.partition("_")
    if rest and prefix in _SPLITS:
        return prefix, rest
    return None, key


def _as_float(value: Any) -> float | None:
    """A finite float, or None for values that are not numbers."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _slug(value: str) -> str:
    """A lowercase identifier made of letters, digits, ``.``, ``_``, ``-`` and ``/``."""
    return re.sub(r"[^a-z0-9._/-]+", "-", value.lower()).strip("-") or "dataset"


def _eval_results(metrics: Mapping[str, Any], *, model_task: str, dataset_type: str,
                  dataset_name: str) -> list[EvalResult]:
    """Model-index results from the test metrics (or, without any, the eval metrics)."""
    by_split: dict[str, list[tuple[str, float]]] = {}
    for key, value in metrics.items():
        split, name = _split_metric(key)
        number = _as_float(value)
        if split is None or number is None or (name not in _METRICS and name.endswith(_NOT_QUALITY)):
            continue
        by_split.setdefault(split, []).append((name, number))
    chosen = next((s for s in ("test", "predict", "eval") if by_split.get(s)), None)
    if chosen is None:
        logger.warning("No test_* or eval_* metrics given; the card's model-index has no results.")
        return []
    results = []
    for name, number in by_split[chosen]:
        metric_type, config, display = _METRICS.get(name, (name, None, name.replace("_", " ")))
        results.append(EvalResult(
            task_type=model_task, task_name=model_task.replace("-", " ").capitalize(),
            dataset_type=dataset_type, dataset_name=dataset_name, dataset_split=_SPLITS[chosen],
            metric_type=metric_type, metric_value=number, metric_name=display, metric_config=config,
        ))
    return results


def _cell(value: Any) -> str:
    """Format a value for a markdown table cell."""
    if isinstance(value, float):
        text = f"{value:g}" if math.isfinite(value) else str(value)
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    if isinstance(value, str) and _looks_like_path(value) and os.path.isabs(os.path.expanduser(value)):
        text = _public_name(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(item) for item in row) + " |" for row in rows]
    return "\n".join(lines)


def _results_section(metrics: Mapping[str, Any]) -> str:
    """Every metric as split | metric | value."""
    rows = []
    for key, value in metrics.items():
        split, name = _split_metric(key)
        number = _as_float(value)
        shown = f"{number:.4f}" if number is not None and not float(number).is_integer() else value
        rows.append((_SPLITS.get(split, "-") if split else "-", name, shown))
    if not rows:
        return "No metrics were recorded for this run."
    return _table(("split", "metric", "value"), rows)


def _trainable_text(trainable_parameters: Mapping[str, Any] | None) -> str:
    """A sentence and a list describing trainable parameter counts."""
    if not trainable_parameters:
        return ""
    lines = []
    trainable, total = trainable_parameters.get("trainable"), trainable_parameters.get("total")
    if isinstance(trainable, int) and isinstance(total, int) and total > 0:
        share = 100.0 * trainable / total
        lines.append(f"Trainable parameters: {trainable:,} of {total:,} ({share:.2f}%).\n")
    for key, value in trainable_parameters.items():
        if lines and key in ("trainable", "total", "trainable_percent"):
            continue
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else _cell(value)
        lines.append(f"- {key}: {shown}")
    return "\n".join(lines)


def _headline(metrics: Mapping[str, Any]) -> str:
    """One clause naming the main test (or eval) scores."""
    for split in ("test", "eval"):
        parts = [f"{shown} {number:.4f}" for name, shown in _HEADLINE.items()
                 if (number := _as_float(metrics.get(f"{split}_{name}"))) is not None]
        if parts:
            return f" On the {_SPLITS[split]} split it reaches " + " and ".join(parts) + "."
    return ""


def _limitations(bundled_data: bool, dataset_license: str | None, evaluation_only: bool = False) -> str:
    """Generic, honest limitations of a transferred classifier (or of a baseline evaluated without training)."""
    items = [
        "Scores were measured on one held-out split of one dataset; expect lower quality on text from other "
        "domains, registers, time periods or languages (domain shift).",
        "Zero- and few-shot scores depend on the wording of the prompt or hypothesis template and on the choice "
        "and order of demonstrations; the version of each is recorded with the results. Compare baselines only "
        "on the same split and spec version." if evaluation_only else
        "Small training sets give noisy estimates: differences of a point or two between runs may not be "
        "real. Re-run with several seeds before drawing conclusions.",
        "The model inherits the biases of its pretrained base model and of the training data, including "
        "social biases and label noise. Do not use it for decisions about people without a dedicated audit.",
        "Predictions are limited to the labels in the label map; inputs that fit none of them still receive "
        "one.",
    ]
    if dataset_license:
        items.append(f"The training data is distributed under `{dataset_license}`; its terms also apply to "
                     "uses of this model.")
    if bundled_data:
        items.append("The corpora bundled with tlnlp are redistributed research datasets; several allow "
                     "research use only. Check the licence before any commercial use.")
    return "\n".join(f"- {item}" for item in items)


def _body(*, fields: Mapping[str, Any], hyperparameters: Mapping[str, Any], metrics: Mapping[str, Any],
          extra_sections: Mapping[str, str]) -> str:
    """The markdown body of the card."""
    labels = fields["labels"]
    shown_labels = ", ".join(f"`{label}`" for label in labels[:20]) + (", ..." if len(labels) > 20 else "")
    if fields["evaluation_only"]:
        summary = (f"**{fields['model_name']}** is a results card: it records how {fields['base_display']} "
                   f"performs on {fields['dataset_name']} ({fields['task']}) without any training, scored by "
                   f"tlnlp's `{fields['method']}` method. No weights were changed.")
    else:
        summary = (f"**{fields['model_name']}** is a {fields['task']} model fine-tuned from "
                   f"{fields['base_display']} on {fields['dataset_name']} with "
                   f"tlnlp using the `{fields['method']}` transfer method.")
    if labels:
        summary += f" It predicts {len(labels)} labels: {shown_labels}."
    summary += _headline(metrics)
    data = [f"- Dataset: {fields['dataset_name']}"]
    if fields["hub_dataset_id"]:
        data.append(f"- Hub dataset: [{fields['hub_dataset_id']}](https://huggingface.co/datasets/"
                    f"{fields['hub_dataset_id']})")
    data.append(f"- Licence: {fields['dataset_license'] or 'not stated; check the source before reuse'}")
    if fields["dataset_description"]:
        data += ["", fields["dataset_description"].strip()]
    sections = {
        "Method": "\n\n".join(filter(None, [f"`{fields['method']}`: {fields['method_description'].strip()}",
                                            _trainable_text(fields["trainable_parameters"])])),
        "Evaluation data" if fields["evaluation_only"] else "Training data": "\n".join(data),
        "Results": _results_section(metrics),
        "Label map": _table(("id", "label"), list(enumerate(labels))) if labels else "",
        "Hyperparameters": _table(("name", "value"), list(hyperparameters.items())) if hyperparameters
        else "No hyperparameters were recorded.",
        "Reproduce": f"```bash\n{fields['command']}\n```",
        "Limitations": _limitations(fields["bundled_data"], fields["dataset_license"], fields["evaluation_only"]),
        **dict(extra_sections),
    }
    parts = [f"# {fields['model_name']}", summary]
    parts += [f"## {title}\n\n{text.strip()}" for title, text in sections.items() if text and text.strip()]
    return "\n\n".join(parts) + "\n"


@dataclass
class CardSpec:
    """What a model card (or the results card of a run that scored without training) says.

    Attributes:
        model_name: Name of the trained model (title and ``model-index`` name).
        base_model: ``bundled:<name>``, a Hub id, or a local path (then no ``base_model`` metadata is written).
        task: Task in words, e.g. "text-classification", "multi-label classification" or "question-answering";
            the registered task that knows the words gives the card's pipeline tag
            (:func:`tlnlp.tasks.pipeline_tag_for`).
        method: Transfer method name (also added as a tag), e.g. "lora".
        method_description: One or two sentences on what the method trains.
        dataset_name: Dataset display name (a local path is reduced to its file name).
        metrics: Final metrics with split prefixes (``test_accuracy``, ``eval_f1_macro``...); ``test_*`` feed the
            ``model-index`` (``eval_*`` when there are none); all are listed in the Results table.
        command: The command that reproduces the run; secret flags are removed.
        labels: Label names indexed by class id (none for question answering or a language model).
        dataset_description: Optional paragraph about the data.
        dataset_license: Licence of the data, if known.
        hub_dataset_id: Hub dataset id, recorded under ``datasets`` when given.
        hyperparameters: Training settings for the Hyperparameters table; secret-named keys are dropped.
        trainable_parameters: Optional counts, e.g. ``{"trainable": 1234, "total": 22713216}``.
        language: Language code of the data.
        license: Licence of the model; default: the base model's when tlnlp knows it (the bundled models).
        tags: Extra tags; "tlnlp" and the method are always included.
        extra_sections: Further ``title -> markdown`` sections appended at the end.
        evaluation_only: A zero-/few-shot results card (no weights changed): the summary and limitations say so.
            None (default): True when ``tags`` holds ``"no-training"``.
    """

    model_name: str
    base_model: str
    task: str
    method: str
    method_description: str
    dataset_name: str
    metrics: Mapping[str, Any]
    command: str
    labels: Sequence[str] = ()
    dataset_description: str | None = None
    dataset_license: str | None = None
    hub_dataset_id: str | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    trainable_parameters: Mapping[str, Any] | None = None
    language: str = "en"
    license: str | None = None
    tags: Sequence[str] | None = None
    extra_sections: Mapping[str, str] | None = None
    evaluation_only: bool | None = None


def _library(tags: list[str]) -> str:
    """The library the Hub names: peft, setfit or sentence-transformers by the run's tags, else transformers."""
    for library in ("peft", "setfit", "sentence-transformers"):
        if library in tags:
            return library
    return "transformers"


def _card_data(spec: CardSpec, license: str | None, tags: list[str]) -> ModelCardData:
    """The card's YAML metadata."""
    pipeline_tag = pipeline_tag_for(spec.task)  # the task that knows these words says which tag
    return ModelCardData(
        model_name=spec.model_name,
        base_model=hub_base_model(spec.base_model),
        datasets=[spec.hub_dataset_id] if spec.hub_dataset_id else None,
        language=spec.language,
        license=license,
        library_name=_library(tags),
        pipeline_tag=pipeline_tag,
        tags=tags,
        eval_results=_eval_results(spec.metrics, model_task=pipeline_tag,
                                   dataset_type=spec.hub_dataset_id or _slug(_public_name(spec.dataset_name)),
                                   dataset_name=_public_name(spec.dataset_name)) or None,
    )


def _fields(spec: CardSpec, evaluation_only: bool) -> dict[str, Any]:
    """What the markdown body shows, with local paths reduced and secrets removed."""
    sources = (spec.dataset_name, spec.base_model, spec.hub_dataset_id or "")
    hub_id = hub_base_model(spec.base_model)
    return {
        "model_name": spec.model_name, "task": spec.task, "labels": [str(label) for label in spec.labels],
        "method": spec.method, "method_description": spec.method_description,
        "dataset_name": _public_name(spec.dataset_name), "dataset_description": spec.dataset_description,
        "dataset_license": spec.dataset_license, "hub_dataset_id": spec.hub_dataset_id,
        "trainable_parameters": spec.trainable_parameters, "command": scrub_command(spec.command),
        "bundled_data": any(source.startswith(BUNDLED_PREFIX) for source in sources),
        "evaluation_only": evaluation_only,
        "base_display": f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id
        else f"a local model (`{_public_name(spec.base_model)}`)",
    }


def build_model_card(spec: CardSpec) -> ModelCard:
    """Build the model card of a trained run, or the results card of a run that scored without training.

    Args:
        spec: What the card says (see :class:`CardSpec`).

    Returns:
        A :class:`huggingface_hub.ModelCard` (``card.save(path)`` writes README.md; ``card.push_to_hub``
        uploads it). ``card.validate()`` is not called: it needs the Hub.
    """
    all_tags = list(dict.fromkeys(["tlnlp", _slug(spec.method), *(spec.tags or [])]))
    evaluation_only = spec.evaluation_only
    if evaluation_only is None:
        evaluation_only = EVALUATION_ONLY_TAG in all_tags
    elif evaluation_only:
        all_tags = list(dict.fromkeys([*all_tags, EVALUATION_ONLY_TAG]))
    hub_id = hub_base_model(spec.base_model)
    license = spec.license
    if license is None and (license := _base_license(hub_id)):
        logger.debug("Card licence %s inherited from the base model %s.", license, hub_id)
    data = _card_data(spec, license, all_tags)
    body = _body(fields=_fields(spec, evaluation_only), hyperparameters=scrub_secrets(dict(spec.hyperparameters)),
                 metrics=spec.metrics, extra_sections=dict(spec.extra_sections or {}))
    home = os.path.expanduser("~")
    text = f"---\n{data.to_yaml()}\n---\n\n{body}"
    if home not in ("", "/", "~"):
        text = text.replace(home, "~")
    return ModelCard(redact_tokens(text))
