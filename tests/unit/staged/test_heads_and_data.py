"""Where a stage starts (head kept, reordered or new) and rehearsal rows mixed from the previous stage."""

from __future__ import annotations

import datasets
import pytest
import torch

from tlnlp.config import ModelArgs
from tlnlp.staged import (
    StageSpecError,
    check_rehearsal,
    checkpoint_labels,
    head_plan,
    load_stage_model,
    mix_rehearsal,
    stage_model_path,
)
from tlnlp.tasks.classification.data import TaskData, data_fingerprint


def _saved_classifier(folder, tiny_classifier, tokenizer, labels):
    model = tiny_classifier("bert", num_labels=len(labels))
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {name: i for i, name in enumerate(labels)}
    with torch.no_grad():  # a recognisable head: row i is filled with i + 1
        for i in range(len(labels)):
            model.classifier.weight[i].fill_(i + 1.0)
            model.classifier.bias[i] = -(i + 1.0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def test_head_plan():
    assert head_plan(["neg", "pos"], ["neg", "pos"]) == "kept"
    assert head_plan(["neg", "pos"], ["pos", "neg"]) == "reordered"
    assert head_plan(["neg", "pos"], ["ham", "spam"]) == "new"
    assert head_plan(["neg", "pos"], ["neg", "pos", "mixed"]) == "new"
    assert head_plan(None, ["neg", "pos"]) == "new"
    assert head_plan(["neg", "pos"], ["neg", "pos"], new_head=True) == "new"


def test_checkpoint_labels_ignores_untrained_heads(tiny_classifier):
    model = tiny_classifier("bert", num_labels=2)
    model.config.architectures = ["BertForSequenceClassification"]
    assert checkpoint_labels(model.config) is None  # LABEL_0, LABEL_1
    model.config.id2label = {0: "neg", 1: "pos"}
    assert checkpoint_labels(model.config) == ["neg", "pos"]
    model.config.architectures = ["BertModel"]
    assert checkpoint_labels(model.config) is None


@pytest.mark.parametrize("labels, head, rows", [
    (["neg", "pos"], "kept", [1.0, 2.0]),
    (["pos", "neg"], "reordered", [2.0, 1.0]),
    (["ham", "spam"], "new", None),
    (["a", "b", "c"], "new", None),
])
def test_load_stage_model_keeps_reorders_or_replaces_the_head(tmp_path, tiny_classifier, tokenizer, labels, head,
                                                              rows):
    saved = _saved_classifier(tmp_path, tiny_classifier, tokenizer, ["neg", "pos"])
    model, _, found = load_stage_model(ModelArgs(model_name_or_path=str(tmp_path)), labels)
    assert found == head
    assert model.config.id2label == dict(enumerate(labels))
    weight = model.classifier.weight.detach()
    if rows is not None:
        assert [float(weight[i, 0]) for i in range(2)] == rows
        assert [float(model.classifier.bias.detach()[i]) for i in range(2)] == [-r for r in rows]
    else:  # a fresh head, initialised like a new one (small normal weights, zero bias)
        assert weight.shape[0] == len(labels) and float(weight.abs().max()) < 0.5
        assert float(model.classifier.bias.detach().abs().max()) == 0.0
    # the encoder always carries over
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight,
                       saved.bert.encoder.layer[0].attention.self.query.weight)


def test_new_head_on_request_is_seeded(tmp_path, tiny_classifier, tokenizer):
    _saved_classifier(tmp_path, tiny_classifier, tokenizer, ["neg", "pos"])
    heads = []
    for _ in range(2):
        torch.manual_seed(7)
        model, _, found = load_stage_model(ModelArgs(model_name_or_path=str(tmp_path)), ["neg", "pos"],
                                           new_head=True)
        assert found == "new"
        heads.append(model.classifier.weight.detach().clone())
    assert torch.equal(heads[0], heads[1]) and float(heads[0][0, 0]) != 1.0


def test_stage_model_path_uses_an_adapter_runs_merged_model(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(StageSpecError, match="--merge_adapter"):
        stage_model_path(tmp_path)
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "config.json").write_text("{}")
    assert stage_model_path(tmp_path) == str(tmp_path / "merged")
    assert stage_model_path("bundled:minilm") == "bundled:minilm"


def _data(name, labels, texts, ids):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=labels)})
    train = datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)
    test = datasets.Dataset.from_dict({"text": texts[:2], "label": ids[:2]}, features=features)
    splits = datasets.DatasetDict({"train": train, "test": test})
    return TaskData(splits=splits, labels=labels, multi_label=False, name=name,
                    fingerprint=data_fingerprint(splits, labels, False))


def test_mix_rehearsal_adds_seeded_rows_of_the_previous_stage_with_labels_mapped_by_name():
    previous = _data("prev", ["neg", "pos"], [f"old {i}" for i in range(20)], [i % 2 for i in range(20)])
    current = _data("cur", ["pos", "neg"], ["new a", "new b", "new c"], [0, 1, 0])  # other label order
    mixed = mix_rehearsal(current, previous, 5, seed=3)
    train = mixed.splits["train"]
    assert len(train) == 8 and list(train["text"][:3]) == ["new a", "new b", "new c"]
    added = list(train["text"][3:])
    assert len(set(added)) == 5 and all(text.startswith("old ") for text in added)
    for text, label in zip(added, train["label"][3:], strict=True):
        old_name = "neg" if int(text.split()[1]) % 2 == 0 else "pos"
        assert current.labels[label] == old_name
    assert mix_rehearsal(current, previous, 5, seed=3).splits["train"]["text"] == train["text"]  # seeded
    assert mix_rehearsal(current, previous, 5, seed=4).splits["train"]["text"] != train["text"]
    assert mixed.splits["test"]["text"] == current.splits["test"]["text"]
    assert mixed.fingerprint != current.fingerprint and len(current.splits["train"]) == 3  # a new object


def test_check_rehearsal_refuses_other_labels_and_too_many_rows():
    sentiment = _data("sentiment", ["neg", "pos"], ["a", "b", "c"], [0, 1, 0])
    spam = _data("spam", ["ham", "spam"], ["d", "e"], [0, 1])
    check_rehearsal([sentiment, sentiment], 3)
    check_rehearsal([sentiment, spam], 0)
    with pytest.raises(StageSpecError) as err:
        check_rehearsal([sentiment, spam], 2)
    for words in ("rehearsal_samples=2", "stage 1 (sentiment) into stage 2 (spam)", "label spaces differ",
                  "drop --rehearsal_samples"):
        assert words in str(err.value)
    with pytest.raises(StageSpecError, match=r"rehearsal_samples=4, but stage 1 \(sentiment\) has only 3"):
        check_rehearsal([sentiment, sentiment], 4)
