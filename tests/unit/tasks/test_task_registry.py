"""The task registry: lookups by name, by a saved model's head and by card words; hooks of the built-in tasks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import tiny_config
from tlnlp.config import DataArgs
from tlnlp.data import DataError
from tlnlp.tasks import (
    TASKS,
    Evaluation,
    Task,
    TaskInputError,
    load_task_data,
    pipeline_tag_for,
    register_task,
    task_for_architectures,
    task_for_pipeline_tag,
)


def test_builtin_tasks_are_registered():
    assert TASKS.names() == ["classification", "language-modeling", "question-answering"]
    assert {TASKS.get(n).pipeline_tag for n in TASKS} == {"text-classification", "fill-mask", "question-answering"}


def test_a_task_registered_from_outside_is_found_by_load_task_data(monkeypatch):
    monkeypatch.setattr(TASKS, "_items", dict(TASKS._items))  # the registration ends with the test

    @register_task
    class EchoTask(Task):
        name = "echo"
        pipeline_tag = "text2text-generation"

        def load_data(self, data_args, seed=None, prefix=""):
            return f"{prefix}{data_args.dataset_name}:{seed}"

    assert load_task_data(DataArgs(dataset_name="x"), task="echo", seed=3, prefix="> ") == "> x:3"
    assert task_for_pipeline_tag("text2text-generation").name == "echo"
    with pytest.raises(ValueError, match="already registered"):
        register_task(EchoTask)


def test_unknown_task_is_a_data_error_listing_the_tasks():
    with pytest.raises(DataError, match="question-answering") as err:
        load_task_data(DataArgs(dataset_name="bundled:sms_spam"), task="question_answering")
    assert "Did you mean 'question-answering'" in str(err.value)


@pytest.mark.parametrize(("architectures", "task"), [
    (("BertForQuestionAnswering",), "question-answering"),
    (("PeftModelForQuestionAnswering", "BertForQuestionAnswering"), "question-answering"),
    (("RobertaForSequenceClassification",), "classification"),
    (("BertForMaskedLM",), "language-modeling"),
    (("GPT2LMHeadModel",), "language-modeling"),
    (("BertForSequenceClassification", "BertForMaskedLM"), "classification"),  # the head, listed first, decides
    (("BertModel",), "classification"),  # no head: the default task, as before
    ((), "classification"),
])
def test_a_saved_model_belongs_to_the_task_of_its_head(architectures, task):
    assert task_for_architectures(architectures).name == task


@pytest.mark.parametrize(("words", "tag"), [
    ("text-classification", "text-classification"), ("multi-label classification", "text-classification"),
    ("question-answering", "question-answering"), ("QA", "question-answering"), ("fill-mask", "fill-mask"),
    ("causal-lm", "text-generation"), ("zero-shot-classification", "zero-shot-classification"),
    ("language-modeling", "fill-mask"), ("something else", "text-classification"),
])
def test_card_words_give_the_pipeline_tag(words, tag):
    assert pipeline_tag_for(words) == tag


def test_question_answering_inputs_are_json_objects():
    qa = TASKS.get("question-answering")
    assert qa.parse_input('{"question": "Who?", "context": "Ada."}') == {"question": "Who?", "context": "Ada."}
    for bad in ("plain text", '{"question": "Who?"}', '{"question": "", "context": "x"}', "[1, 2]"):
        with pytest.raises(TaskInputError, match="question"):
            qa.parse_input(bad)
    with pytest.raises(TaskInputError, match="load_pipeline"):
        TASKS.get("language-modeling").parse_input("a text")


@dataclass
class _Scores:
    split: str
    probabilities: object
    threshold: float = 0.5


@dataclass
class _Context:
    output_dir: Path
    data: object
    scores: _Scores
    trained: object = None
    results: dict = field(default_factory=dict)
    config_objects: tuple = ()
    is_main_process: bool = True


def test_classification_scores_an_evaluation_only_run(tmp_path):
    from tlnlp.tasks.classification.data import load_classification_data

    data = load_classification_data(DataArgs(dataset_name="bundled:movie_sentiment", max_predict_samples=6))
    probs = np.tile([[0.3, 0.7]], (6, 1))
    ctx = _Context(output_dir=tmp_path / "run", data=data, scores=_Scores("test", probs))
    task = TASKS.get("classification")
    evaluation = task.evaluate(ctx)
    assert isinstance(evaluation, Evaluation) and evaluation["test_samples"] == 6
    assert dict(evaluation)["test_accuracy"] == pytest.approx(np.mean(np.asarray(data.splits["test"]["label"]) == 1))
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["prediction"] for r in rows} == {"positive"}
    (figure,) = evaluation.figures
    assert figure.path == tmp_path / "run" / "confusion_matrix.png" and figure.title.endswith("(test)")
    assert list(figure.predicted) == [1] * 6
    assert task.environment(ctx) == {"split": "test", "labels": data.labels, "multi_label": False}


def test_report_draws_what_the_evaluation_asks_for(tmp_path):
    from tlnlp.report import plot_evaluation
    from tlnlp.tasks import ConfusionFigure

    figure = ConfusionFigure(gold=[0, 1, 1], predicted=[0, 1, 0], labels=["a", "b"], path=tmp_path / "cm.png",
                             title="t")
    assert plot_evaluation(Evaluation({"x": 1.0}, [figure])) == [tmp_path / "cm.png"]
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_language_modeling_card_hooks_read_what_the_lm_stage_measured(tmp_path):
    task = TASKS.get("language-modeling")
    ctx = SimpleNamespace(output_dir=tmp_path, results={"perplexity_before": 30.0, "perplexity_after": 20.0,
                                                        "lm_objective_mlm": 0.0, "lm_head_was_new": 1.0,
                                                        "lm_held_out_texts": 4.0})
    assert task.card_task(ctx) == "text-generation" and pipeline_tag_for(task.card_task(ctx)) == "text-generation"
    (section,) = task.card_sections(ctx).values()
    assert "perplexity on 4 texts" in section and "before 30.00, after 20.00" in section and "newly" in section
    assert task.card_tags(ctx) == ["lm-adaptation", "clm"] and task.environment(ctx) == {"lm_objective": "clm"}
    assert task.card_metrics({"perplexity_after": 1.0, "train_loss": 2.0, "train_runtime": 3.0}) == {
        "perplexity_after": 1.0, "train_loss": 2.0}


def test_load_pipeline_of_a_masked_lm_folder_fills_masks(tmp_path, tokenizer):
    import torch
    from transformers import AutoModelForMaskedLM

    import tlnlp

    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(tiny_config("bert")).save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    pipe = tlnlp.load_pipeline(tmp_path / "lm")
    assert pipe.task == "fill-mask" and len(pipe("a [MASK] film", top_k=2)) == 2
