"""``python -m tlnlp predict`` on a question-answering run: answers JSON lines, and bad input is one error line."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import tiny_config


@pytest.fixture
def qa_run_dir(tmp_path, tokenizer):
    """A saved 2-layer BERT with a question-answering head, as a QA run leaves its output folder."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(0)
    AutoModelForQuestionAnswering.from_config(tiny_config("bert")).save_pretrained(tmp_path / "qa")
    tokenizer.save_pretrained(tmp_path / "qa")
    return tmp_path / "qa"


def test_cli_predict_on_a_qa_run_answers_json_lines(qa_run_dir, capsys, monkeypatch):
    from tlnlp.__main__ import main

    item = {"question": "Who built it?", "context": "Karl Drais built the running machine in 1817."}
    assert main(["predict", str(qa_run_dir), json.dumps(item), "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    answer = record["predictions"][0]
    assert record["question"] == item["question"] and answer["answer"] in item["context"]
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(item) + "\n"))
    assert main(["predict", str(qa_run_dir), "--top_k", "2"]) == 0
    assert capsys.readouterr().out.strip().endswith(item["question"])


def test_cli_predict_on_a_qa_run_with_plain_text_is_one_error_line(qa_run_dir, capsys):
    """It used to end in a traceback: the QA pipeline was called with the texts of a classification run."""
    from tlnlp.__main__ import main

    assert main(["predict", str(qa_run_dir), "just some text"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "question" in err[0] and "context" in err[0]
    assert main(["predict", str(qa_run_dir), json.dumps({"question": "Who?"})]) == 2
    assert capsys.readouterr().err.startswith("error: ")
