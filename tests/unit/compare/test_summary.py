import csv
import json

from tests.unit.compare.conftest import record
from tlnlp.compare import aggregate, flag_negative_transfer, format_markdown, write_tables
from tlnlp.compare.plots import plot_cost_accuracy, plot_learning_curves


def _slots():
    slots = [("zero_shot_embeddings", "zero_shot", 0, record(0.60))]
    for budget, accs in ((8, {"full": [0.70, 0.72], "feature_extraction": [0.50, 0.52], "from_scratch": [0.65, 0.66],
                              "lora": [0.64, 0.70]}),
                         ("all", {"full": [0.90, 0.91], "feature_extraction": [0.80, 0.81],
                                  "from_scratch": [0.85, 0.86], "lora": [0.88, 0.90]})):
        for strategy, values in accs.items():
            kind = "reference" if strategy == "from_scratch" else "trained"
            for value in values:
                extra = {"n_train": 16 if budget == 8 else 400}
                if kind == "trained":
                    extra["forgetting"] = {"measure": "pseudo_perplexity", "before": 10.0, "after": 12.0,
                                           "change_pct": 20.0}
                slots.append((strategy, kind, budget, record(value, **extra)))
    return slots


def test_aggregate_mean_std_and_order():
    rows = aggregate(_slots())
    assert [(r["strategy"], r["budget"]) for r in rows][:3] == [("zero_shot_embeddings", 0), ("full", 8),
                                                                ("feature_extraction", 8)]
    full8 = next(r for r in rows if r["strategy"] == "full" and r["budget"] == 8)
    assert full8["seeds"] == 2
    assert abs(full8["accuracy_mean"] - 0.71) < 1e-12
    assert abs(full8["accuracy_std"] - 0.0141421356) < 1e-8  # sample std over seeds
    assert full8["lm_change_pct"] == 20.0 and full8["lm_measure"] == "pseudo_perplexity"
    assert full8["inference_ms_per_example"] == 1.0


def test_negative_transfer_flags_beyond_spread_only():
    rows = aggregate(_slots())
    messages = flag_negative_transfer(rows, "accuracy")
    flags = {(r["strategy"], r["budget"]): r["flags"] for r in rows}
    # feature extraction at 8: below from-scratch (0.51 vs 0.655) and below zero-shot (0.60), far beyond spread
    assert flags[("feature_extraction", 8)] == ["below from_scratch", "below zero_shot_embeddings"]
    # feature extraction on all labels: below from-scratch (0.805 vs 0.855), above zero-shot
    assert flags[("feature_extraction", "all")] == ["below from_scratch"]
    # lora at 8: mean 0.67 > 0.655 -> not flagged; full is above both
    assert flags[("lora", 8)] == [] and flags[("full", 8)] == [] and flags[("full", "all")] == []
    # references are never flagged
    assert flags[("from_scratch", 8)] == [] and flags[("zero_shot_embeddings", 0)] == []
    assert len(messages) == 3 and all("Negative transfer" in m for m in messages)


def test_within_spread_is_not_flagged():
    slots = [("from_scratch", "reference", 8, record(0.70)), ("from_scratch", "reference", 8, record(0.80)),
             ("full", "trained", 8, record(0.70)), ("full", "trained", 8, record(0.74))]
    rows = aggregate(slots)
    assert flag_negative_transfer(rows) == []  # 0.72 vs 0.75: gap 0.03 < std 0.071 + 0.028
    assert flag_negative_transfer(aggregate(slots[:2] + [("full", "trained", 8, record(0.5))] * 2)) != []


def test_tables_and_plots_written(tmp_path):
    rows = aggregate(_slots())
    flag_negative_transfer(rows)
    paths = write_tables(rows, tmp_path, {"metric": "accuracy"})
    markdown = paths["markdown"].read_text()
    assert markdown.startswith("| strategy | labels/class |")
    assert "0.7100 ± 0.0141" in markdown and "below from_scratch" in markdown and "+20.0%" in markdown
    assert markdown.startswith(format_markdown(rows) + "\n")
    assert "| full | pseudo_perplexity | 10.0 | 8: 12.0 (+20.0%); all: 12.0 (+20.0%) |" in markdown
    with paths["csv"].open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows) and table[1]["strategy"] == "full"
    assert json.loads(paths["json"].read_text())["rows"][1]["accuracy_mean"] == rows[1]["accuracy_mean"]
    for plot in (plot_learning_curves, plot_cost_accuracy):
        path = plot(rows, tmp_path / f"{plot.__name__}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_table_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    from pathlib import Path

    rows = aggregate(_slots())
    first = {name: path.read_bytes() for name, path in write_tables(rows, tmp_path, {"metric": "accuracy"}).items()}
    real_replace = Path.replace

    def interrupted(self, target):
        if Path(target).name == "compare_table.json":
            raise KeyboardInterrupt  # killed between writing the new table and putting it in place
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", interrupted)
    try:
        write_tables(rows[:1], tmp_path, {"metric": "accuracy"})
    except KeyboardInterrupt:
        pass
    assert (tmp_path / "compare_table.json").read_bytes() == first["json"]  # the old table, whole
    assert json.loads((tmp_path / "compare_table.json").read_text())["rows"]
    monkeypatch.setattr(Path, "replace", real_replace)
    write_tables(rows, tmp_path, {"metric": "accuracy"})
    assert not list(tmp_path.glob("*.tmp"))
    assert {name: path.read_bytes() for name, path in write_tables(rows, tmp_path, {"metric": "accuracy"}).items()} \
        == first
