"""The ladder's ``ensemble:<strategy>``: members on the cell's rows, their probabilities averaged, cells keyed."""

import numpy as np
import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import CompareArgs, ensemble_strategies, get_strategy, run_compare
from tlnlp.compare.strategies import test_metrics as ladder_metrics


@pytest.fixture
def members_seen(monkeypatch):
    """Each member an ensemble cell runs: (test labels, the member's probabilities, its record)."""
    real = ensemble_strategies._run_member
    seen = []

    def spy(ctx, strategy, member_ctx, cell):
        record, probabilities = real(ctx, strategy, member_ctx, cell)
        seen.append((list(ctx.test["label"]), probabilities, record, member_ctx.budget_rows(cell.budget, cell.seed)))
        return record, probabilities

    monkeypatch.setattr(ensemble_strategies, "_run_member", spy)
    return seen


def test_ensemble_cell_equals_the_mean_of_its_members(tiny_bert_folder, sentiment_csv, tmp_path, members_seen):
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv,
                                      strategies=["full", "ensemble:full"], budgets=["2"], ensemble_size=2,
                                      learning_rates=["full=1e-3"]))
    records = {r["strategy"]: r for r in result.records}
    ensemble, single = records["ensemble:full"], records["full"]
    assert len(members_seen) == 2 and ensemble["member_seeds"] == [0, 1000]
    gold = members_seen[0][0]
    probabilities = [probs for _, probs, _, _ in members_seen]
    assert all(np.allclose(p.sum(axis=1), 1.0) for p in probabilities)
    assert np.abs(probabilities[0] - probabilities[1]).max() > 1e-4  # the members differ
    mean = np.mean(np.stack(probabilities), axis=0)
    assert ensemble["metrics"] == ladder_metrics(gold, np.log(mean), 2)
    for (_, probs, record, _), member in zip(members_seen, ensemble["members"], strict=True):
        assert member["metrics"] == record["metrics"] == ladder_metrics(gold, np.log(probs), 2)
    # every member trains on the cell's own k-shot rows; member 0 is the plain cell of the seed
    assert members_seen[0][3] == members_seen[1][3] and len(members_seen[0][3]) == 4
    assert ensemble["members"][0]["metrics"] == single["metrics"]
    assert ensemble["n_train"] == single["n_train"] == 4
    assert ensemble["trainable_parameters"] == 2 * single["trainable_parameters"]
    assert ensemble["member_accuracy_mean"] == pytest.approx(np.mean([m["metrics"]["accuracy"]
                                                                      for m in ensemble["members"]]))
    rows = {r["strategy"]: r for r in result.rows}
    assert rows["ensemble:full"]["kind"] == "trained" and rows["ensemble:full"]["seeds"] == 1


def test_ensemble_cells_are_keyed_by_their_members_and_size(tiny_bert_folder, sentiment_csv, tmp_path):
    from tlnlp.compare.runner import _context, plan_cells

    keys = {}
    for size in (2, 3):
        model_args, data_args, args = ladder_args(tiny_bert_folder, tmp_path / f"k{size}", sentiment_csv,
                                                  strategies=["ensemble:full", "ensemble:lora"], budgets=["2"],
                                                  ensemble_size=size)
        ctx = _context(model_args, data_args, args)
        cells, _ = plan_cells(ctx)
        keys[size] = {cell.strategy: cell for cell in cells}
    assert keys[2]["ensemble:full"].key != keys[3]["ensemble:full"].key
    assert keys[2]["ensemble:full"].key != keys[2]["ensemble:lora"].key
    config = keys[2]["ensemble:full"].config
    assert config["member"] == "full" and config["size"] == 2 and config["member_settings"]["method"] == "full"


def test_ensemble_strategy_names_are_checked_when_parsed(tmp_path):
    assert get_strategy("ensemble:setfit").kind == "fitted" and get_strategy("ensemble:from_scratch").kind == "trained"
    assert get_strategy("full") is not None and ensemble_strategies.ensemble_strategy("full") is None
    with pytest.raises(ValueError, match="members must be a strategy that trains"):
        CompareArgs(output_dir=str(tmp_path), strategies=["ensemble:zero_shot_embeddings"])
    with pytest.raises(ValueError, match="members must be a strategy that trains"):
        CompareArgs(output_dir=str(tmp_path), strategies=["ensemble:ensemble:full"])
    with pytest.raises(ValueError, match="--learning_rates ia3=5e-5"):
        CompareArgs(output_dir=str(tmp_path), strategies=["ensemble:ia3"])
    with pytest.raises(ValueError, match="full"):
        CompareArgs(output_dir=str(tmp_path), strategies=["ensemble:fulll"])
    with pytest.raises(ValueError, match="ensemble_size=0 must be positive"):
        CompareArgs(output_dir=str(tmp_path), strategies=["ensemble:full"], ensemble_size=0)
    args = CompareArgs(output_dir=str(tmp_path), strategies=["ensemble:lora"], learning_rates=["lora=1e-3"])
    assert args.learning_rate("ensemble:lora") == args.learning_rate("lora") == 1e-3


def test_ensemble_of_an_embedding_strategy(tiny_bert_folder, sentiment_csv, tmp_path, members_seen):
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "fe", sentiment_csv,
                                      strategies=["ensemble:feature_extraction"], budgets=["2"], ensemble_size=2))
    (record,) = result.records
    gold = members_seen[0][0]
    mean = np.mean(np.stack([probs for _, probs, _, _ in members_seen]), axis=0)
    assert record["metrics"] == ladder_metrics(gold, np.log(mean), 2) and len(record["members"]) == 2
