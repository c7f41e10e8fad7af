"""The ladder's ``vote:<a>,<b>``: different strategies' cells, same seed and rows, their probabilities averaged."""

import numpy as np
import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import CompareArgs, get_strategy, run_compare, vote_strategies
from tlnlp.compare.code_keys import code_files
from tlnlp.compare.strategies import test_metrics as ladder_metrics


@pytest.fixture
def members_seen(monkeypatch):
    """Each member a vote cell runs: (member, test labels, its probabilities, its record, its cell)."""
    real = vote_strategies._run_member
    seen = []

    def spy(ctx, member, cell):
        record, probabilities = real(ctx, member, cell)
        seen.append((member, list(ctx.test["label"]), probabilities, record,
                     vote_strategies._member_cell(ctx, cell, member)))
        return record, probabilities

    monkeypatch.setattr(vote_strategies, "_run_member", spy)
    return seen


def test_vote_cell_is_the_mean_of_its_members(tiny_bert_folder, sentiment_csv, tmp_path, members_seen):
    vote = "vote:full,zero_shot_embeddings"
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv,
                                      strategies=["full", "zero_shot_embeddings", vote], budgets=["2"],
                                      learning_rates=["full=1e-3"]))
    records = {r["strategy"]: r for r in result.records}
    assert [m for m, *_ in members_seen] == ["full", "zero_shot_embeddings"]
    gold = members_seen[0][1]
    probabilities = [probs for _, _, probs, _, _ in members_seen]
    assert all(np.allclose(p.sum(axis=1), 1.0) for p in probabilities)
    mean = np.mean(np.stack(probabilities), axis=0)
    assert records[vote]["metrics"] == ladder_metrics(gold, np.log(mean), 2)
    # each member is its own ladder cell: the trained one on the budget's rows and seed, zero-shot at budget 0
    cells = {member: cell for member, *_, cell in members_seen}
    assert (cells["full"].budget, cells["full"].seed) == (2, 0) and cells["zero_shot_embeddings"].budget == 0
    assert cells["zero_shot_embeddings"].config["seed"] is None
    for member in ("full", "zero_shot_embeddings"):
        assert cells[member].key == records[member]["key"]
    members = {m["strategy"]: m for m in records[vote]["members"]}
    assert members["full"]["metrics"] == records["full"]["metrics"]
    assert members["zero_shot_embeddings"]["metrics"] == records["zero_shot_embeddings"]["metrics"]
    assert records[vote]["n_train"] == records["full"]["n_train"] == 4 and records[vote]["vote_size"] == 2
    row = next(r for r in result.rows if r["strategy"] == vote)
    assert row["budget"] == 2 and row["kind"] == "trained"


def test_vote_names_are_checked_when_parsed(tmp_path):
    assert get_strategy("vote:feature_extraction,zero_shot_embeddings").kind == "fitted"
    assert vote_strategies.vote_strategy("full") is None
    for name, message in [("vote:full", "two or more different"), ("vote:full,full", "two or more different"),
                          ("vote:full,", "two or more different"), ("vote:full,ensemble:lora", "cannot vote"),
                          ("vote:full,few_shot", "cannot vote"),
                          ("vote:zero_shot_embeddings,zero_shot_nli", "no member uses the budget's labels"),
                          ("vote:full,fulll", "full")]:
        with pytest.raises(ValueError, match=message):
            CompareArgs(output_dir=str(tmp_path), strategies=[name])
    with pytest.raises(ValueError, match="--learning_rates ia3=5e-5"):
        CompareArgs(output_dir=str(tmp_path), strategies=["vote:feature_extraction,ia3"])
    CompareArgs(output_dir=str(tmp_path), strategies=["vote:ia3,lora"], learning_rates=["ia3=1e-3"])


def test_member_scores_become_probabilities():
    probabilities = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert np.array_equal(vote_strategies.as_probabilities(probabilities), probabilities)
    assert np.allclose(vote_strategies.as_probabilities(np.log(probabilities)), probabilities)
    logits = np.array([[1.0, 3.0], [0.0, 0.0]])
    assert np.allclose(vote_strategies.as_probabilities(logits), [[1 / (1 + np.e**2), 1 / (1 + np.e**-2)], [0.5, 0.5]])


def test_a_vote_cell_is_keyed_by_the_code_of_every_member():
    def folders(name):
        return {path.parent.name for path in code_files(get_strategy(name))}

    assert "setfit" not in folders("full") and "setfit" in folders("setfit")
    assert "setfit" in folders("vote:full,setfit")  # the member's method folder: its edits recompute the vote
