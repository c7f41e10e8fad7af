"""Records, forgetting, the baseline comparison and the card's "Staged transfer" section."""

from __future__ import annotations

import datasets
import numpy as np
import pytest

from tlnlp.staged import (
    NOT_MEASURABLE,
    StagedResult,
    StageRecord,
    compare_with_baseline,
    format_summary,
    measure_forgetting,
    replace_section,
    score_split,
    staged_section,
)
from tlnlp.tasks.classification.data import TaskData


def _record(index, dataset, labels, test=None, eval_=None, **extra):
    metrics = {k: v for k, v in (("test_accuracy", test), ("eval_accuracy", eval_)) if v is not None}
    values = dict(index=index, name=f"stage{index}_{dataset}", dataset=f"bundled:{dataset}", data_version="1.0.0",
                  fingerprint=f"{index}" * 64, labels=labels, method="full", epochs=1.0, learning_rate=5e-5,
                  max_steps=-1, train_samples_per_class=None, max_train_samples=None, train_rows=100,
                  rehearsal_rows=0, head="new", start_model="bundled:minilm", metrics=metrics)
    return StageRecord(**{**values, **extra})


def test_compare_with_baseline_flags_negative_transfer_only_below_the_baseline():
    chained = _record(2, "movie", ["neg", "pos"], test=0.70)
    worse = compare_with_baseline(chained, _record(0, "movie", ["neg", "pos"], test=0.75, name="baseline"))
    assert worse["negative_transfer"] is True and worse["gain"] == pytest.approx(-0.05)
    assert worse["split"] == "test" and worse["folder"] == "baseline"
    better = compare_with_baseline(chained, _record(0, "movie", ["neg", "pos"], test=0.70))
    assert better["negative_transfer"] is False and better["gain"] == 0
    with pytest.raises(ValueError, match="common split"):
        compare_with_baseline(chained, _record(0, "movie", ["neg", "pos"], eval_=0.7))


def _data(labels, texts, ids):
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=labels)})
    test = datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)
    return TaskData(splits=datasets.DatasetDict({"train": test, "test": test}), labels=labels, multi_label=False,
                    name="d", fingerprint="f")


def test_forgetting_scores_the_final_model_on_earlier_stages_with_labels_mapped_by_name(tiny_classifier,
                                                                                         tokenizer):
    model = tiny_classifier("bert", num_labels=2)
    texts = ["a fine film", "a dull film", "so good", "so bad", "fine", "awful", "great fun", "boring"]
    logits = score_split(model, tokenizer, _data(["neg", "pos"], texts, [0] * 8).splits["test"], 16, batch_size=3)
    direct = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.detach().numpy()
    np.testing.assert_allclose(logits, direct, atol=1e-5)
    predicted = logits.argmax(1)  # final label order: [pos, neg]
    gold_final = [int(p) for p in predicted[:6]] + [1 - int(p) for p in predicted[6:]]  # 6 of 8 right
    expected = 0.75
    earlier = _data(["neg", "pos"], texts, [1 - g for g in gold_final])  # same gold, the earlier stage's ids
    other = _data(["ham", "spam"], texts, [0] * 8)
    records = [_record(1, "sent", ["neg", "pos"], test=0.9), _record(2, "spam", ["ham", "spam"], test=0.8),
               _record(3, "final", ["pos", "neg"], test=0.7)]
    final = _data(["pos", "neg"], texts, gold_final)
    entries = measure_forgetting(records, [earlier, other, final], (model, tokenizer), [16, 16, 16])
    assert entries[0]["measurable"] and entries[0]["split"] == "test"
    assert entries[0]["accuracy_after_chain"] == pytest.approx(expected)
    assert entries[0]["forgetting"] == pytest.approx(0.9 - expected)
    assert entries[1] == {"stage": 2, "dataset": "bundled:spam", "measurable": False, "reason": NOT_MEASURABLE}


def test_result_metrics_and_card_section():
    records = [_record(1, "amazon", ["neg", "pos"], test=0.85, eval_=0.86),
               _record(2, "movie", ["neg", "pos"], test=0.78, eval_=0.8, head="kept", rehearsal_rows=10)]
    result = StagedResult(output_dir="/x/chain", start_model="bundled:minilm", records=records, rehearsal_samples=10,
                          forgetting=[{"stage": 1, "dataset": "bundled:amazon", "measurable": True, "split": "test",
                                       "accuracy_after_stage": 0.85, "accuracy_after_chain": 0.8,
                                       "forgetting": 0.05}],
                          baseline=compare_with_baseline(records[1], _record(0, "movie", ["neg", "pos"], test=0.8)),
                          version="9.9")
    metrics = result.metrics()
    assert metrics["stage1_test_accuracy"] == 0.85 and metrics["final_test_accuracy"] == 0.78
    assert metrics["stage1_forgetting"] == 0.05 and metrics["stage1_accuracy_after_chain"] == 0.8
    assert metrics["negative_transfer"] == 1.0 and metrics["transfer_gain"] == pytest.approx(-0.02)
    assert str(result.final_dir) == "/x/chain/stage2_movie"
    text = staged_section(records, total=2, start_model="bundled:minilm", version="9.9", rehearsal=10, result=result)
    for words in ("stage 2 of a 2-stage", "tlnlp 9.9", "`bundled:minilm`", "| 1 | bundled:amazon v1.0.0 |",
                  "1" * 64, "| kept |", "100 (+10 rehearsal)", "0.7800", "### Forgetting", "+0.0500",
                  "**Negative transfer**", "without the rehearsal rows"):
        assert words in text, words
    pending = staged_section(records, total=3, start_model="/home/me/run", version="9.9")
    assert "see Results" in pending and "`run`" in pending and "/home/me" not in pending
    summary = format_summary(result)
    assert "NEGATIVE TRANSFER" in summary and "0.8500 -> 0.8000" in summary


def test_replace_section_replaces_in_place_or_appends(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("# m\n\n## Results\n\nr\n\n## Staged transfer\n\nold\n\n### Forgetting\n\nold too\n\n"
                    "## Limitations\n\nl\n")
    replace_section(card, "Staged transfer", "new\n\n### Forgetting\n\nnew too")
    assert card.read_text() == ("# m\n\n## Results\n\nr\n\n## Staged transfer\n\nnew\n\n### Forgetting\n\nnew too\n\n"
                                "## Limitations\n\nl\n")
    replace_section(card, "Extra", "x")
    assert card.read_text().endswith("## Limitations\n\nl\n\n## Extra\n\nx\n")


def test_records_round_trip(tmp_path):
    record = _record(1, "amazon", ["neg", "pos"], test=0.5, settings={"a": {"b": 1}})
    assert StageRecord.from_dict({**record.to_dict(), "unknown": 1}) == record
