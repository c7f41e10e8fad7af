"""tlnlp's metrics as local ``evaluate`` modules read offline, and pipelines scored by ``evaluate``'s evaluators."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.conftest import tiny_config
from tlnlp.tasks import (
    classification_metrics,
    evaluate_classification_pipeline,
    evaluate_qa_pipeline,
    load_metric,
    metric_path,
)
from tlnlp.tasks.qa import squad_metrics

LABELS = ["negative", "neutral", "positive"]
TEXTS = ["a wonderful, moving film", "dull and far too long", "fine", "the plot holds together", "i wept",
         "not for me", "an actor at his best", "two hours lost", "it is a film", "bright and funny"]

SQUAD_REFERENCES = [
    {"id": "q1", "answers": {"text": ["Eiffel Tower"], "answer_start": [4]}},
    {"id": "q2", "answers": {"text": ["1889", "in 1889"], "answer_start": [10, 7]}},
    {"id": "q3", "answers": {"text": [], "answer_start": []}},
    {"id": "q4", "answers": {"text": ["Gustave Eiffel's company"], "answer_start": [0]}},
]
SQUAD_PREDICTIONS = [
    {"id": "q1", "prediction_text": "the Eiffel Tower", "no_answer_probability": 0.1},
    {"id": "q2", "prediction_text": "1889.", "no_answer_probability": 0.3},
    {"id": "q3", "prediction_text": "Paris", "no_answer_probability": 0.8},
    {"id": "q4", "prediction_text": "Eiffel's company built it", "no_answer_probability": 0.6},
]

OFFLINE_SCRIPT = """
import json, evaluate
from tlnlp.tasks import metric_path
single = evaluate.load(metric_path("classification"), num_labels=4)
multi = evaluate.load(metric_path("classification"), config_name="multilabel")
squad = evaluate.load(metric_path("squad"))
squad_v2 = evaluate.load(metric_path("squad"), config_name="squad_v2")
data = json.loads(input())
print(json.dumps({
    "single": single.compute(predictions=data["pred"], references=data["true"]),
    "multi": multi.compute(predictions=data["mpred"], references=data["mtrue"]),
    "squad": squad.compute(predictions=data["qa_pred"], references=data["qa_ref"]),
    "squad_v2": squad_v2.compute(predictions=data["qa_pred_v2"], references=data["qa_ref"]),
}))
"""


def _squad_inputs():
    answers = {p["id"]: p["prediction_text"] for p in SQUAD_PREDICTIONS}
    gold = {r["id"]: r["answers"]["text"] for r in SQUAD_REFERENCES}
    odds = {p["id"]: p["no_answer_probability"] for p in SQUAD_PREDICTIONS}
    return answers, gold, odds


def test_modules_load_offline_from_another_directory(tmp_path):
    rng = np.random.default_rng(0)
    data = {"true": rng.integers(0, 4, 30).tolist(), "pred": rng.integers(0, 3, 30).tolist(),
            "mtrue": rng.integers(0, 2, (12, 3)).tolist(), "mpred": rng.integers(0, 2, (12, 3)).tolist(),
            "qa_pred": [{k: v for k, v in p.items() if k != "no_answer_probability"} for p in SQUAD_PREDICTIONS],
            "qa_pred_v2": SQUAD_PREDICTIONS, "qa_ref": SQUAD_REFERENCES}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf"), "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "PYTHONPATH": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT], input=json.dumps(data), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["single"] == classification_metrics(data["true"], data["pred"], 4)
    assert found["multi"] == classification_metrics(data["mtrue"], data["mpred"], 3, multi_label=True)
    answers, gold, odds = _squad_inputs()
    assert found["squad"] == squad_metrics(answers, gold)
    assert found["squad_v2"] == squad_metrics(answers, gold, null_odds=odds)


def test_metric_path_names_the_module_folder_and_refuses_unknown_names():
    path = metric_path("classification")
    assert os.path.isfile(os.path.join(path, "tlnlp_classification.py"))
    assert os.path.isabs(path) and os.path.isfile(os.path.join(metric_path("squad"), "tlnlp_squad.py"))
    with pytest.raises(ValueError, match="Did you mean 'squad'.*Available: classification, squad"):
        metric_path("squad_v2")


@pytest.mark.parametrize("seed", range(3))
def test_classification_module_equals_classification_metrics(seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 5, 60), rng.integers(0, 5, 60)
    metric = load_metric("classification", num_labels=6, keep_in_memory=True)
    for start in range(0, 60, 25):
        metric.add_batch(predictions=p[start:start + 25], references=y[start:start + 25])
    assert metric.compute() == classification_metrics(y, p, 6)
    assert metric.compute(predictions=p, references=y, num_labels=7) == classification_metrics(y, p, 7)
    inferred = load_metric("classification", keep_in_memory=True).compute(predictions=p, references=y)
    assert inferred == classification_metrics(y, p, int(max(y.max(), p.max())) + 1)
    ym, pm = rng.integers(0, 2, (20, 4)), rng.integers(0, 2, (20, 4))
    multi = load_metric("classification", config_name="multilabel", keep_in_memory=True)
    assert multi.compute(predictions=pm, references=ym) == classification_metrics(ym, pm, 4, multi_label=True)


def test_modules_refuse_unknown_configurations_and_bad_labels():
    with pytest.raises(ValueError, match="one of: default, multilabel"):
        load_metric("classification", config_name="multi_label", keep_in_memory=True)
    with pytest.raises(ValueError, match="one of: default, squad_v2"):
        load_metric("squad", config_name="v2", keep_in_memory=True)
    with pytest.raises(ValueError, match="outside 0..2"):
        load_metric("classification", num_labels=3, keep_in_memory=True).compute(predictions=[0, 3],
                                                                                 references=[0, 1])


def test_squad_module_equals_squad_metrics():
    answers, gold, odds = _squad_inputs()
    v1 = [{k: v for k, v in p.items() if k != "no_answer_probability"} for p in SQUAD_PREDICTIONS]
    found = load_metric("squad", keep_in_memory=True).compute(predictions=v1, references=SQUAD_REFERENCES)
    assert found == squad_metrics(answers, gold)
    v2 = load_metric("squad", config_name="squad_v2", keep_in_memory=True)
    assert v2.compute(predictions=SQUAD_PREDICTIONS, references=SQUAD_REFERENCES) == squad_metrics(
        answers, gold, null_odds=odds)
    cut = v2.compute(predictions=SQUAD_PREDICTIONS, references=SQUAD_REFERENCES, no_answer_threshold=0.5)
    thresholded = {qid: "" if odds[qid] > 0.5 else text for qid, text in answers.items()}
    assert cut == squad_metrics(thresholded, gold, null_odds=odds, span_predictions=answers)
    assert cut["NoAns_exact"] == 100.0 and cut["best_exact"] == found["exact"] + 25.0


@pytest.fixture
def tiny_labelled_classifier():
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    cfg = tiny_config("bert", num_labels=3, id2label=dict(enumerate(LABELS)),
                      label2id={label: i for i, label in enumerate(LABELS)})
    return AutoModelForSequenceClassification.from_config(cfg).eval()


def _direct_metrics(pipe, texts, labels):
    predicted = [LABELS.index(answer["label"]) for answer in pipe(texts)]
    return classification_metrics(labels, predicted, len(LABELS))


def test_evaluator_scores_a_transformers_pipeline(tiny_labelled_classifier, tokenizer):
    from transformers import pipeline

    pipe = pipeline("text-classification", model=tiny_labelled_classifier, tokenizer=tokenizer, device="cpu")
    labels = [i % 3 for i in range(len(TEXTS))]
    result = evaluate_classification_pipeline(pipe, {"text": TEXTS, "label": labels}, LABELS)
    assert result == _direct_metrics(pipe, TEXTS, labels)  # every metric, not only accuracy
    named = [{"sentence": t, "gold": LABELS[y]} for t, y in zip(TEXTS, labels, strict=True)]  # names, other columns
    assert evaluate_classification_pipeline(pipe, named, LABELS, text_column="sentence", label_column="gold") == result
    with pytest.raises(ValueError, match=r"labels \['negative'\] that are not in label_names"):
        evaluate_classification_pipeline(pipe, {"text": TEXTS, "label": labels}, ["bad", "neutral", "positive"])
    with pytest.raises(ValueError, match="Column 'sentence' is not in the dataset"):
        evaluate_classification_pipeline(pipe, {"text": TEXTS, "label": labels}, LABELS, text_column="sentence")


def test_evaluator_scores_tlnlp_load_pipeline_of_a_run(tiny_labelled_classifier, tokenizer, tmp_path):
    import tlnlp

    run = tmp_path / "run"
    tiny_labelled_classifier.save_pretrained(run)
    tokenizer.save_pretrained(run)
    (run / "run_config.yaml").write_text(yaml.safe_dump({"max_seq_length": 16}))
    pipe = tlnlp.load_pipeline(run, device="cpu")
    labels = [(i * 2) % 3 for i in range(len(TEXTS))]
    result = evaluate_classification_pipeline(pipe, {"text": TEXTS, "label": labels}, LABELS)
    assert result == _direct_metrics(pipe, TEXTS, labels)


def test_evaluator_refuses_a_multi_label_pipeline(tokenizer):
    from transformers import AutoModelForSequenceClassification, pipeline

    cfg = tiny_config("bert", num_labels=3, id2label=dict(enumerate(LABELS)),
                      problem_type="multi_label_classification")
    pipe = pipeline("text-classification", model=AutoModelForSequenceClassification.from_config(cfg),
                    tokenizer=tokenizer, device="cpu")
    with pytest.raises(ValueError, match="cannot score a multi-label pipeline"):
        evaluate_classification_pipeline(pipe, {"text": TEXTS[:2], "label": [0, 1]}, LABELS)


QA_ROWS = [
    {"id": "a", "question": "Who built the running machine?",
     "context": "Karl Drais built the running machine in 1817 in Mannheim.",
     "answers": {"text": ["Karl Drais"], "answer_start": [0]}},
    {"id": "b", "question": "When was it built?", "context": "Karl Drais built the running machine in 1817.",
     "answers": {"text": ["1817"], "answer_start": [39]}},
    {"id": "c", "question": "What colour was it?", "context": "Karl Drais built the running machine in 1817.",
     "answers": {"text": [], "answer_start": []}},
    {"id": "d", "question": "Where?", "context": "It was first ridden in Mannheim, a city in Baden.",
     "answers": {"text": ["Mannheim", "in Mannheim"], "answer_start": [23, 20]}},
]


def test_qa_evaluator_scores_tlnlp_load_pipeline_of_a_qa_run(tokenizer, tmp_path):
    import torch
    from transformers import AutoModelForQuestionAnswering

    import tlnlp

    torch.manual_seed(0)
    run = tmp_path / "qa"
    AutoModelForQuestionAnswering.from_config(tiny_config("bert")).save_pretrained(run)
    tokenizer.save_pretrained(run)
    settings = {"max_seq_length": 48, "doc_stride": 16, "version_2_with_negative": True}
    (run / "run_config.yaml").write_text(yaml.safe_dump(settings))
    pipe = tlnlp.load_pipeline(run, device="cpu")
    questions, contexts = [r["question"] for r in QA_ROWS], [r["context"] for r in QA_ROWS]
    ranked = pipe(question=questions, context=contexts, top_k=1000)
    answers = {r["id"]: found[0]["answer"] for r, found in zip(QA_ROWS, ranked, strict=True)}
    null = {r["id"]: next((c["score"] for c in found if c["answer"] == ""), 0.0)
            for r, found in zip(QA_ROWS, ranked, strict=True)}
    gold = {r["id"]: r["answers"]["text"] for r in QA_ROWS}

    result = evaluate_qa_pipeline(pipe, QA_ROWS)  # one unanswerable question: scored as SQuAD v2
    assert result == pytest.approx(squad_metrics(answers, gold, null_odds=null), abs=1e-9)
    assert "best_f1" in result and result["NoAns_total"] == 1
    answerable = [r for r in QA_ROWS if r["answers"]["text"]]
    v1 = evaluate_qa_pipeline(pipe, answerable)
    assert v1 == squad_metrics(answers, {r["id"]: gold[r["id"]] for r in answerable})
