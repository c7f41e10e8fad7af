"""Extractive question answering (SQuAD v1.1 / v2.0 style) as a registered task."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tlnlp.tasks.base import Evaluation, SavedModel, Task, TaskInputError, register_task, run_setting
from tlnlp.tasks.qa.features import QA_EVAL_COLUMNS

__all__ = ["QA_SETTINGS", "QuestionAnsweringTask"]

#: The QA settings a run records in ``environment.json`` and on its card.
QA_SETTINGS = ("version_2_with_negative", "doc_stride", "n_best_size", "max_answer_length",
               "null_score_diff_threshold")
_NO_ANSWER = '""'
_QA_WORDS = ("question-answering", "question_answering", "qa", "extractive-qa", "extractive_qa")
_USAGE = (
    "```python\nimport tlnlp\n\n"
    'qa = tlnlp.load_pipeline("{name}")  # a question-answering pipeline with this run\'s window settings\n'
    'qa(question="Who built the first bicycle?", context="The first bicycle was built by ...")\n```\n\n'
    "`predictions.json` holds the validation answers behind the `eval_*` scores, `test_predictions.json` "
    "the test answers; `*nbest_predictions.json` list the candidates with their scores.")


def _qa_args(ctx: Any) -> Any:
    """The run's :class:`~tlnlp.config.QAArgs` (the argument object that has ``doc_stride``)."""
    found = next((obj for obj in getattr(ctx, "config_objects", ()) if hasattr(obj, "doc_stride")), None)
    if found is None:
        raise ValueError("A question-answering run needs its QAArgs among the RunContext's config_objects.")
    return found


@register_task
class QuestionAnsweringTask(Task):
    """Question + context -> the answer span (or no answer, SQuAD v2); windows, n-best post-processing, EM/F1."""

    name = "question-answering"
    pipeline_tag = "question-answering"
    pipeline_tags = dict.fromkeys(_QA_WORDS, "question-answering")
    heads = ("ForQuestionAnswering",)
    recipe = "question_answering"
    head = "span-prediction head"
    input_help = 'a question-answering run takes JSON objects {"question": ..., "context": ...}'
    usage_example = 'pipe(question="Who wrote it?", context="It was written by Ada.")'

    def load_data(self, data_args: Any, seed: int | None = None, qa_args: Any = None) -> Any:
        """:func:`~tlnlp.tasks.qa.data.load_qa_data` (``qa_args``: :class:`tlnlp.config.QAArgs`, default ones)."""
        # deferred: `import tlnlp.tasks` stays free of datasets and transformers
        from tlnlp.config.qa_args import QAArgs
        from tlnlp.tasks.qa.data import load_qa_data

        return load_qa_data(data_args, qa_args if qa_args is not None else QAArgs(), seed)

    def load_model(self, model_args: Any, data: Any = None) -> tuple[Any, Any]:
        """:func:`~tlnlp.tasks.qa.model.load_question_answerer`: a span head and a fast tokenizer."""
        from tlnlp.tasks.qa.model import load_question_answerer  # deferred: as in load_data

        return load_question_answerer(model_args)

    def prepare_model(self, model: Any) -> Any:
        """:func:`~tlnlp.tasks.qa.model.fix_peft_question_answering`: segment ids and virtual-token positions."""
        from tlnlp.tasks.qa.model import fix_peft_question_answering  # deferred: as in load_data

        return fix_peft_question_answering(model)

    def tokenize(self, data: Any, tokenizer: Any, data_args: Any, qa_args: Any = None) -> Any:
        """Training windows with labels, evaluation windows with offsets (:func:`~tlnlp.tasks.qa.features.tokenize_qa`).

        ``qa_args`` gives the window stride and padding.
        """
        from tlnlp.config.qa_args import QAArgs  # deferred: as in load_data
        from tlnlp.tasks.qa.features import tokenize_qa

        qa_args = qa_args if qa_args is not None else QAArgs()
        return tokenize_qa(data.splits, tokenizer, data_args.max_seq_length, qa_args.doc_stride,
                           qa_args.pad_to_max_length)

    def trainer_datasets(self, tokenized: Any) -> Any:
        """The windows without the evaluation columns (``example_id``, ``offset_mapping``, ``cls_index``)."""
        from datasets import DatasetDict  # deferred: `import tlnlp.tasks` stays free of datasets

        return DatasetDict({split: windows.remove_columns([c for c in QA_EVAL_COLUMNS if c in windows.column_names])
                            for split, windows in tokenized.items()})

    def evaluate(self, ctx: Any) -> Evaluation:
        """:func:`~tlnlp.tasks.qa.evaluate.evaluate_qa_run` (``ctx.trained.datasets``: every split's windows)."""
        from tlnlp.tasks.qa.evaluate import evaluate_qa_run  # deferred: as in load_data

        return evaluate_qa_run(ctx, _qa_args(ctx))

    def card_sections(self, ctx: Any) -> dict[str, str]:
        """How to answer questions with the run, and which files hold its answers."""
        return {"Answering questions": _USAGE.format(name=ctx.output_dir.name)}

    def card_tags(self, ctx: Any) -> list[str]:
        """``question-answering``."""
        return ["question-answering"]

    def card_settings(self, ctx: Any) -> dict[str, Any]:
        """The window and answer settings."""
        qa_args = _qa_args(ctx)
        return {name: getattr(qa_args, name) for name in QA_SETTINGS}

    def environment(self, ctx: Any) -> dict[str, Any]:
        """The task, repaired answer starts and the window and answer settings."""
        return {"task": self.name, "answer_starts_repaired": ctx.data.repaired, **self.card_settings(ctx),
                "max_seq_length": run_setting(ctx, "max_seq_length")}

    def pipeline(self, saved: SavedModel, device: int | str | None, kwargs: dict[str, Any]) -> Any:
        """:func:`~tlnlp.tasks.qa.pipeline.qa_pipeline` with the run's window and answer settings."""
        from tlnlp.tasks.qa.pipeline import qa_pipeline  # deferred: `import tlnlp.tasks` stays free of torch

        return qa_pipeline(saved, device, kwargs)

    def parse_input(self, line: str) -> dict[str, str]:
        """A JSON object with a non-empty ``question`` and ``context``.

        Raises:
            TaskInputError: Anything else; the message shows the expected shape.
        """
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            item = None
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k].strip()
                                                 for k in ("question", "context")):
            shown = line if len(line) <= 60 else line[:57] + "..."
            raise TaskInputError(f'a question-answering run answers JSON objects {{"question": ..., "context": ...}}, '
                                 f"one per argument or stdin line; got {shown!r}.")
        return {"question": item["question"], "context": item["context"]}

    def predict(self, pipe: Any, inputs: Sequence[Any], top_k: int) -> list[dict[str, Any]]:
        """``{"question", "context", "predictions": [{"answer", "score", "start", "end"}, ...]}`` per input."""
        results = pipe(list(inputs), top_k=top_k)
        return [{**item, "predictions": result if isinstance(result, list) else [result]}
                for item, result in zip(inputs, results, strict=True)]

    def format_prediction(self, record: Mapping[str, Any]) -> str:
        """``answer (score), ...`` (``""`` for no answer) then a tab and the question."""
        shown = ", ".join(f"{r['answer'] or _NO_ANSWER} ({r['score']:.3f})" for r in record["predictions"])
        return f"{shown}\t{record['question']}"
