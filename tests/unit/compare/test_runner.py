import json

import pytest

from tests.unit.compare.conftest import ladder_args as _args
from tlnlp.compare import run_compare
from tlnlp.training import OutputDirError


def test_ladder_writes_outputs_resumes_and_adds_a_strategy(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    from tlnlp.compare import forgetting

    monkeypatch.setattr(forgetting, "_HEAD_FIT", {**forgetting._HEAD_FIT, "texts": 200, "epochs": 1})
    out = tmp_path / "ladder"
    first = run_compare(*_args(tiny_bert_folder, out, sentiment_csv, check_forgetting=True, forgetting_samples=4,
                               learning_rates=["full=5e-3"]))
    assert first.cells_run == 4
    for name in ("compare_table.md", "compare_table.csv", "compare_table.json", "learning_curve.png",
                 "cost_vs_accuracy.png", "run_config.yaml", "environment.json"):
        assert (out / name).is_file(), name
    rows = {(r["strategy"], r["budget"]): r for r in first.rows}
    assert set(rows) == {("frozen_backbone", 2), ("frozen_backbone", 4), ("from_scratch", 2),
                         ("from_scratch", 4)}
    assert rows[("frozen_backbone", 2)]["n_train"] == 4 and rows[("frozen_backbone", 4)]["n_train"] == 8
    assert rows[("frozen_backbone", 2)]["n_test"] == 24
    frozen = rows[("frozen_backbone", 2)]
    assert frozen["trainable_parameters"] < rows[("from_scratch", 2)]["trainable_parameters"]
    assert frozen["lm_change_pct"] == 0.0  # a frozen backbone forgets nothing, exactly
    assert "lm_change_pct" not in rows[("from_scratch", 2)]  # no pretrained knowledge to forget

    again = run_compare(*_args(tiny_bert_folder, out, sentiment_csv, check_forgetting=True, forgetting_samples=4,
                               learning_rates=["full=5e-3"], strategies=["frozen_backbone", "full", "from_scratch"]))
    assert again.cells_run == 2  # only the new strategy's cells
    full = next(r for r in again.rows if r["strategy"] == "full" and r["budget"] == 4)
    assert full["lm_change_pct"] != 0.0 and full["lm_measure"] == "pseudo_perplexity"
    assert json.loads((out / "compare_table.json").read_text())["rows"][0]["strategy"] == "frozen_backbone"


def test_killed_run_resumes_from_finished_cells(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    from tlnlp.compare import strategies

    real = strategies.fit_and_score
    calls = []

    def dies_on_third_cell(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(strategies, "fit_and_score", dies_on_third_cell)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_compare(*_args(tiny_bert_folder, out, sentiment_csv))
    assert len(list((out / "cells").glob("*.json"))) == 2
    monkeypatch.setattr(strategies, "fit_and_score", real)
    partial = run_compare(*_args(tiny_bert_folder, out, sentiment_csv, report_only=True))
    assert partial.cells_run == 0 and [(r["strategy"], r["budget"]) for r in partial.rows] == [
        ("frozen_backbone", 2), ("from_scratch", 2)]
    resumed = run_compare(*_args(tiny_bert_folder, out, sentiment_csv))
    assert resumed.cells_run == 2 and len(resumed.records) == 4


def test_refuses_a_folder_that_is_not_a_compare_run(tiny_bert_folder, sentiment_csv, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="overwrite_output_dir"):
        run_compare(*_args(tiny_bert_folder, out, sentiment_csv))
    assert (out / "notes.txt").read_text() == "mine"


def test_baselines_zero_shot_once_few_shot_demos_capped(tiny_bert_folder, sentiment_csv, tokenizer, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from tests.conftest import tiny_config

    lm_dir, nli_dir = tmp_path / "tiny_gpt2", tmp_path / "tiny_nli"
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config("gpt2")).save_pretrained(lm_dir)
    AutoModelForSequenceClassification.from_config(tiny_config(
        "bert", id2label={0: "entailment", 1: "not_entailment"}, label2id={"entailment": 0, "not_entailment": 1},
    )).save_pretrained(nli_dir)
    for folder in (lm_dir, nli_dir):
        tokenizer.save_pretrained(folder)
    result = run_compare(*_args(tiny_bert_folder, tmp_path / "baselines", sentiment_csv,
                                strategies=["zero_shot_embeddings", "zero_shot_nli", "few_shot"], budgets=["1", "4"],
                                seeds=[0, 1], fewshot_model=str(lm_dir), fewshot_spec="sentiment", fewshot_shots=2,
                                nli_model=str(nli_dir), prompt_test_samples=8))
    # one cell per zero-shot strategy; few-shot: 1 shot x 2 seeds, then 2 shots (the cap) x 2 seeds
    assert result.cells_run == 6
    rows = {(r["strategy"], r["budget"]): r for r in result.rows}
    assert set(rows) == {("zero_shot_embeddings", 0), ("zero_shot_nli", 0), ("few_shot", 1), ("few_shot", 4)}
    assert rows[("zero_shot_nli", 0)]["n_test"] == 8
    assert rows[("zero_shot_embeddings", 0)]["seeds"] == 1 and rows[("zero_shot_embeddings", 0)]["n_test"] == 24
    assert rows[("few_shot", 4)]["n_test"] == 8 and rows[("few_shot", 4)]["n_train"] == 4  # 2 demos x 2 classes
    assert rows[("few_shot", 1)]["trainable_parameters"] == 0


def test_ulmfit_cells_train_with_the_recipes_defaults(tiny_bert_folder, sentiment_csv, tmp_path, built_trainers):
    result = run_compare(*_args(tiny_bert_folder, tmp_path / "ulmfit", sentiment_csv, strategies=["ulmfit"],
                                budgets=["4"], batch_size=2, min_train_steps=40, max_train_epochs=10))
    assert result.cells_run == 1
    trainer = built_trainers[0]
    assert trainer.state.max_steps == 40  # 8 rows, batch 2, 10 epochs
    # --method ulmfit's own defaults (no ladder-only setting): every group below the head thawed by 10% of the
    # run, one every 4 / 3 steps (head, block_1, block_0, embeddings)
    assert sorted(set(trainer.lr_scheduler.thaw_steps)) == [0, 1, 2, 4]
    assert trainer.args.learning_rate == 5e-5  # full fine-tuning's default rate
    rates = {group["name"]: group["initial_lr"] for group in trainer.optimizer.param_groups}
    assert rates["embeddings"] == pytest.approx(5e-5 * 0.95 ** 3)
