"""The multi-head model (any architecture), its methods, and the Trainer's one-task batches and per-task evaluation."""

from __future__ import annotations

import datasets
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from tlnlp.config import TrainingArgs
from tlnlp.methods import MethodArgs
from tlnlp.multitask import (
    MultiTaskClassifier,
    MultiTaskDataset,
    SamplingSettings,
    build_multitask_trainer,
    prepare_multitask_method,
    task_means,
)
from tlnlp.tasks import make_compute_metrics


def _model(tiny_classifier, arch="bert", labels=(2, 6)):
    heads = {}
    for name, count in zip(("sentiment", "topic"), labels, strict=True):
        clf = tiny_classifier(arch, num_labels=count, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        clf.config.id2label = {i: f"{name}_{i}" for i in range(count)}
        clf.config.label2id = {v: k for k, v in clf.config.id2label.items()}
        heads[name] = clf
    return MultiTaskClassifier(heads)


def _batch(task: int, rows: int = 3):
    torch.manual_seed(1)
    ids = torch.randint(5, 500, (rows, 9))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "task_ids": torch.full((rows,), task)}


@pytest.mark.parametrize("arch", ["bert", "distilbert", "gpt2"])
def test_each_head_has_its_task_label_count_and_routes_like_its_standalone_classifier(tiny_classifier, arch):
    model = _model(tiny_classifier, arch).eval()
    assert model.task_names == ["sentiment", "topic"]
    assert [model.num_labels(t) for t in model.task_names] == [2, 6]
    keys = list(model.state_dict())
    encoder_keys = [k for k in keys if k.startswith("encoder.")]
    assert encoder_keys and all(k.startswith(("encoder.", "heads.")) for k in keys)
    assert not [k for k in keys if k.startswith("heads.") and f".{model.prefix}." in k], "encoder stored once"
    for task, name in enumerate(model.task_names):
        out = model(**_batch(task))
        assert out.logits.shape == (3, model.num_labels(name))
        alone = model.standalone(name).eval()
        inputs = {k: v for k, v in _batch(task).items() if k != "task_ids"}
        assert torch.equal(alone(**inputs).logits, out.logits)
        assert alone.config.id2label[1] == f"{name}_1"
    loss = model(**_batch(1), labels=torch.tensor([0, 5, 3])).loss
    loss.backward()
    assert all(p.grad is not None for p in model.heads["topic"].parameters())
    assert all(p.grad is None for p in model.heads["sentiment"].parameters())  # the other head took no part
    assert model.encoder.get_input_embeddings().weight.grad is not None  # the shared encoder learns from it


def test_a_batch_of_several_tasks_or_without_task_ids_is_refused(tiny_classifier):
    model = _model(tiny_classifier)
    batch = _batch(0)
    batch["task_ids"] = torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match=r"several tasks \(\[0, 1\]\); each batch must hold one task"):
        model(**batch)
    with pytest.raises(ValueError, match="needs task_ids"):
        model(input_ids=batch["input_ids"])
    with pytest.raises(ValueError, match="task id 2 is not one of 0..1"):
        model(**_batch(2))


def test_a_standalone_classifier_saves_as_a_plain_folder_with_the_task_labels(tiny_classifier, tmp_path):
    model = _model(tiny_classifier).eval()
    model.standalone("topic").save_pretrained(tmp_path / "topic")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "topic").eval()
    assert loaded.config.id2label == {i: f"topic_{i}" for i in range(6)}
    inputs = {k: v for k, v in _batch(1).items() if k != "task_ids"}
    assert torch.allclose(loaded(**inputs).logits, model(**_batch(1)).logits, atol=1e-6)


def test_frozen_backbone_trains_heads_and_pooler_only(tiny_classifier):
    model = _model(tiny_classifier)
    prepare_multitask_method(model, MethodArgs(method="frozen_backbone"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("heads.topic.") for n in trainable) and any(n.startswith("heads.sentiment.") for n in
                                                                          trainable)
    assert {n for n in trainable if n.startswith("encoder.")} == {"encoder.pooler.dense.weight",
                                                                  "encoder.pooler.dense.bias"}


def test_lora_wraps_the_shared_encoder_and_each_task_saves_the_merged_model(tiny_classifier, tmp_path):
    model = _model(tiny_classifier)
    prepared = prepare_multitask_method(model, MethodArgs(method="lora", lora_r=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    encoder = {n for n in trainable if n.startswith("encoder.")}
    assert encoder and all("lora_" in n or ".pooler." in n for n in encoder)
    assert any(n.startswith("heads.topic.classifier") for n in trainable)
    with torch.no_grad():  # give the adapter a non-zero update so that merging matters
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.eval()
    expected = model(**_batch(1)).logits
    alone = model.standalone("topic").eval()
    assert type(alone.bert).__name__ == "BertModel"  # merged: a plain encoder, no adapter layers
    inputs = {k: v for k, v in _batch(1).items() if k != "task_ids"}
    assert torch.allclose(alone(**inputs).logits, expected, atol=1e-5)
    assert prepared.model is model and prepared.param_groups is None


def _rows(tokenizer, texts, labels):
    encoded = tokenizer(texts, truncation=True, max_length=16)
    return datasets.Dataset.from_dict({**encoded, "labels": labels})


@pytest.fixture
def small_trainer(tiny_classifier, tokenizer, tmp_path):
    model = _model(tiny_classifier)
    prepared = prepare_multitask_method(model, MethodArgs(method="full"))
    sentiment = _rows(tokenizer, [f"a fine film number {i}" for i in range(12)], [i % 2 for i in range(12)])
    topic = _rows(tokenizer, [f"where is city {i}?" for i in range(36)], [i % 6 for i in range(36)])
    args = TrainingArgs(output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, per_device_eval_batch_size=8,
                        report_to="none", num_train_epochs=1, learning_rate=1e-3, use_cpu=True)
    trainer = build_multitask_trainer(
        prepared, tokenizer, MultiTaskDataset([sentiment, topic]),
        {"sentiment": MultiTaskDataset([sentiment], [0]), "topic": MultiTaskDataset([topic], [1])}, args,
        sampling=SamplingSettings("round_robin", 1.0, seed=0),
        task_metrics={"sentiment": make_compute_metrics(2, False, 0.5), "topic": make_compute_metrics(6, False, 0.5)})
    return trainer


def test_the_trainer_draws_one_task_per_batch_in_the_sampler_shares(small_trainer):
    batches = list(small_trainer.get_train_dataloader())
    assert len(batches) == 12  # (12 + 36) rows / 4 per block
    tasks = []
    for batch in batches:
        ids = set(batch["task_ids"].tolist())
        assert len(ids) == 1, "one task per batch"
        task = ids.pop()
        tasks.append(task)
        assert int(batch["labels"].max()) < (2 if task == 0 else 6)
    assert tasks == [0, 1] * 6  # round robin: equal shares whatever the sizes


def test_evaluation_reports_each_task_and_the_means(small_trainer):
    small_trainer.train()
    metrics = small_trainer.evaluate()
    for task in ("sentiment", "topic"):
        assert 0 <= metrics[f"eval_{task}_accuracy"] <= 1 and f"eval_{task}_f1_macro" in metrics
    assert metrics["eval_accuracy"] == pytest.approx((metrics["eval_sentiment_accuracy"] +
                                                      metrics["eval_topic_accuracy"]) / 2)
    assert metrics["eval_loss"] == pytest.approx((metrics["eval_sentiment_loss"] + metrics["eval_topic_loss"]) / 2)
    logged = [e for e in small_trainer.state.log_history if "eval_accuracy" in e]
    assert logged and logged[-1]["eval_accuracy"] == pytest.approx(metrics["eval_accuracy"])


def test_task_means_average_quality_metrics_not_timings():
    metrics = {"eval_a_accuracy": 0.5, "eval_b_accuracy": 1.0, "eval_a_runtime": 3.0, "eval_b_runtime": 1.0,
               "eval_a_loss": 0.2, "eval_b_loss": 0.4, "eval_a_mcc": 0.1}
    assert task_means(metrics, "eval", ["a", "b"]) == pytest.approx({"eval_accuracy": 0.75, "eval_loss": 0.3})
