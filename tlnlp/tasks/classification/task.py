"""Sequence classification (single- and multi-label, single texts and pairs) as a registered task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tlnlp.tasks.base import Evaluation, SavedModel, Task, register_task, run_setting
from tlnlp.tasks.classification.metrics import make_compute_metrics

__all__ = ["ClassificationTask"]

_CLASSIFICATION_WORDS = ("classification", "text-classification", "text_classification", "sequence-classification",
                         "multi-label classification", "multi-label-classification", "multi_label_classification")
# an entailment model is a classifier that the Hub runs as a zero-shot classifier
_ZERO_SHOT_WORDS = ("zero-shot-classification", "zero-shot", "nli")


def _long_text(data_args: Any) -> str:
    return getattr(data_args, "long_text", "truncate")


@register_task
class ClassificationTask(Task):
    """Texts (or text pairs) -> one label, or several (multi-label); offline metrics; ``predictions.jsonl``."""

    name = "classification"
    pipeline_tag = "text-classification"
    pipeline_tags = {**dict.fromkeys(_CLASSIFICATION_WORDS, "text-classification"),
                     **dict.fromkeys(_ZERO_SHOT_WORDS, "zero-shot-classification")}
    heads = ("ForSequenceClassification",)
    recipe = "classification"
    head = "classification head"
    input_help = "a classification run takes texts"
    usage_example = 'pipe("A short text to classify.")'

    def load_data(self, data_args: Any, seed: int | None = None) -> Any:
        """:func:`~tlnlp.tasks.classification.data.load_classification_data`."""
        # deferred: `import tlnlp.tasks` stays free of datasets and transformers
        from tlnlp.tasks.classification.data import load_classification_data

        return load_classification_data(data_args, seed=seed)

    def load_model(self, model_args: Any, data: Any) -> tuple[Any, Any]:
        """:func:`tlnlp.models.load_classifier` with the data's label names (multi-label when the data is)."""
        from tlnlp.models import load_classifier  # deferred: `import tlnlp.tasks` stays free of transformers

        return load_classifier(model_args, labels=data.labels, multi_label=data.multi_label)

    def tokenize(self, data: Any, tokenizer: Any, data_args: Any) -> Any:
        """:func:`~tlnlp.tasks.classification.tokenize.tokenize_classification` to ``max_seq_length``.

        Long texts are cut (and counted), or windowed with ``--long_text chunk``; the result's
        ``length_metrics()`` gives the ``<split>_truncated_rows`` numbers for ``all_results.json``.
        """
        from tlnlp.tasks.classification.tokenize import tokenize_classification  # deferred: as in load_data

        return tokenize_classification(data, tokenizer, data_args.max_seq_length, _long_text(data_args),
                                       getattr(data_args, "long_text_stride", None))

    def compute_metrics(self, data: Any, data_args: Any) -> Callable[..., dict[str, float]]:
        """Offline accuracy, F1, precision, recall, MCC (hamming loss for multi-label) per evaluation.

        With ``--long_text chunk`` the metrics score rows: each row's windows' logits are averaged first
        (:class:`~tlnlp.tasks.classification.windows.RowMetrics`; the Trainer must come from :meth:`trainer_class`).
        """
        metrics = make_compute_metrics(data.num_labels, data.multi_label, data_args.multi_label_threshold)
        if _long_text(data_args) != "chunk":
            return metrics
        from tlnlp.tasks.classification.windows import RowMetrics  # deferred: as in load_data

        return RowMetrics(metrics)

    def trainer_class(self, data_args: Any, base: type) -> type:
        """The Trainer class for these data settings: ``base``, or ``base`` made to score rows for windows.

        With ``--long_text chunk`` a row's logits are the mean of its windows' logits
        (:func:`~tlnlp.tasks.classification.windows.row_windows_trainer`).
        """
        if _long_text(data_args) != "chunk":
            return base
        from tlnlp.tasks.classification.windows import row_windows_trainer  # deferred: as in load_data

        return row_windows_trainer(base)

    def check_method(self, data_args: Any, method: Any) -> None:
        """Refuse ``--long_text chunk`` with a method that fits without the Trainer (heads on sentence embeddings)."""
        from tlnlp.tasks.classification.windows import check_long_text  # deferred: as in load_data

        check_long_text(data_args, method)

    def evaluate(self, ctx: Any) -> Evaluation:
        """Validation and test scores and test predictions, or the scored split of an evaluation-only run."""
        from tlnlp.tasks.classification import evaluate  # deferred: as in load_data

        if getattr(ctx, "fitted", None) is not None:
            return evaluate.evaluate_fitted(ctx)
        return evaluate.evaluate_trained(ctx) if ctx.trained is not None else evaluate.evaluate_probabilities(ctx)

    def card_task(self, ctx: Any) -> str:
        """``text-classification`` (a results card of multi-label data says so)."""
        return "multi-label classification" if ctx.scores is not None and ctx.data.multi_label else self.pipeline_tag

    def card_sections(self, ctx: Any) -> dict[str, str]:
        """"Long texts": how rows longer than ``max_seq_length`` were handled (when any were, or windows ran)."""
        from tlnlp.tasks.classification.evaluate import long_text_section  # deferred: as in load_data

        section = long_text_section(ctx)
        return {"Long texts": section} if section else {}

    def card_settings(self, ctx: Any) -> dict[str, Any]:
        """``long_text`` and ``long_text_stride`` of a run that classified long texts by windows."""
        if run_setting(ctx, "long_text", "truncate") != "chunk":
            return {}
        return {"long_text": "chunk", "long_text_stride": run_setting(ctx, "long_text_stride")}

    def environment(self, ctx: Any) -> dict[str, Any]:
        """The label names and whether rows may carry several (and the scored split of a results run)."""
        split = {"split": ctx.scores.split} if ctx.scores is not None else {}
        return {**split, "labels": list(ctx.data.labels), "multi_label": ctx.data.multi_label}

    def pipeline(self, saved: SavedModel, device: int | str | None, kwargs: dict[str, Any]) -> Any:
        """:func:`~tlnlp.tasks.classification.pipeline.classification_pipeline`."""
        from tlnlp.tasks.classification.pipeline import classification_pipeline  # deferred: as in load_data

        return classification_pipeline(saved, device, kwargs)

    def parse_input(self, line: str) -> str:
        """A text, as it is."""
        return line

    def predict(self, pipe: Any, inputs: Sequence[Any], top_k: int) -> list[dict[str, Any]]:
        """``{"text", "predictions": [{"label", "score"}, ...]}`` per text, best label first."""
        results = pipe(list(inputs), top_k=top_k)
        return [{"text": text, "predictions": result if isinstance(result, list) else [result]}
                for text, result in zip(inputs, results, strict=True)]

    def format_prediction(self, record: Mapping[str, Any]) -> str:
        """``label (score), ...`` then a tab and the text."""
        shown = ", ".join(f"{r['label']} ({r['score']:.3f})" for r in record["predictions"])
        return f"{shown}\t{record['text']}"
