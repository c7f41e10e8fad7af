"""Ladder cells of the methods that fit a head on sentence embeddings: feature extraction and SetFit."""

from __future__ import annotations

import pytest

from tests.unit.compare.conftest import ladder_args
from tlnlp.compare import get_strategy, run_compare

STRATEGIES = ["feature_extraction", "feature_extraction_zero_shot_head", "setfit", "setfit_zero_shot_head"]


def test_embedding_strategies_fit_on_the_cells_rows_and_share_setfit_bodies(tiny_bert_folder, sentiment_csv,
                                                                           tmp_path, monkeypatch):
    from tlnlp.methods import METHODS

    setfit = METHODS.get("setfit")
    real, bodies = type(setfit).train_body, []

    def counting(self, *args, **kwargs):
        bodies.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(setfit), "train_body", counting)
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=STRATEGIES,
                                      setfit_max_steps=2))
    rows = {(r["strategy"], r["budget"]): r for r in result.rows}
    assert set(rows) == {(s, b) for s in STRATEGIES for b in (2, 4)}
    assert len(bodies) == 2  # one SetFit body per (budget, seed): the anchored head reuses it
    for (_, budget), row in rows.items():
        assert row["n_train"] == 2 * budget and row["kind"] == "fitted" and 0 <= row["accuracy_mean"] <= 1
    frozen = rows[("feature_extraction", 2)]
    assert frozen["trainable_parameters"] == 2 * 32 + 2  # the head over the tiny model's 32-wide embeddings
    records = [r for r in result.records if "head_prior_strength" in r]
    assert len(records) == 4 and all(r["head_prior_strength"] >= 0 for r in records)
    setfit_records = [r for r in result.records if "body_steps" in r]
    # the cap only shortens: 2 rows per class make 1 step of pairs, 4 rows per class more than the cap of 2
    assert sorted({r["n_train"]: r["body_steps"] for r in setfit_records}.items()) == [(4, 1), (8, 2)]


def test_embedding_strategies_need_no_learning_rate_and_refuse_a_bad_cap(tmp_path):
    from tlnlp.compare import CompareArgs

    assert get_strategy("setfit").kind == "fitted" and get_strategy("frozen_backbone").kind == "trained"
    CompareArgs(output_dir=str(tmp_path), strategies=STRATEGIES)  # no --learning_rates needed
    with pytest.raises(ValueError, match="setfit_max_steps=0"):
        CompareArgs(output_dir=str(tmp_path), strategies=["setfit"], setfit_max_steps=0)


def test_sentence_fine_tuning_cells_train_with_the_ladders_rate_and_epochs(tiny_bert_folder, sentiment_csv, tmp_path):
    from tlnlp.compare import CompareArgs

    names = ["sentence_fine_tuning", "sentence_fine_tuning_zero_shot_head"]
    assert all(get_strategy(n).kind == "trained" for n in names)
    assert CompareArgs(output_dir=str(tmp_path), strategies=names).learning_rate(names[1]) == 5e-5  # a default
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names,
                                      learning_rates=[f"{n}=1e-3" for n in names]))
    assert {(r["strategy"], r["budget"]) for r in result.rows} == {(n, b) for n in names for b in (2, 4)}
    for record in result.records:
        assert record["learning_rate"] == 1e-3 and record["epochs"] > 0 and record["train_loss"] > 0
        assert record["trainable_parameters"] == record["total_parameters"]
    anchored = [r for r in result.records if r["strategy"] == names[1]]
    assert len(anchored) == 2 and all(r["head_prior_strength"] >= 0 for r in anchored)


def test_embedding_cells_encode_at_the_precision_bf16_auto_picks_and_key_on_it(tiny_bert_folder, sentiment_csv,
                                                                                tmp_path, monkeypatch):
    import tlnlp.methods.heads.method as heads_method
    import tlnlp.models.sentence_classifier as classifier_module
    from tlnlp.config.precision import BF16_ENV

    seen = []

    def spying(real):
        def encode(*args, bf16=False, **kwargs):
            seen.append(bf16)
            return real(*args, bf16=bf16, **kwargs)
        return encode

    for module in (heads_method, classifier_module):
        monkeypatch.setattr(module, "encode_normalized", spying(module.encode_normalized))
    out = tmp_path / "ladder"
    runs = []
    for precision in ("bf16", "fp32", "bf16"):
        monkeypatch.setenv(BF16_ENV, precision)
        seen.clear()
        run_compare(*ladder_args(tiny_bert_folder, out, sentiment_csv, strategies=["feature_extraction"]))
        runs.append(set(seen))
    # rows, prototypes and test split all at the run's precision; the fp32 run did not reuse the bf16 cells, and
    # the bf16 cells were kept beside the fp32 ones (the third run encodes nothing)
    assert runs == [{True}, {False}, set()]


def test_self_training_cells_label_the_training_texts_outside_their_rows(tiny_bert_folder, sentiment_csv, tmp_path,
                                                                        monkeypatch):
    from tlnlp.compare import embedding_strategies

    pools = []
    real = embedding_strategies._unlabeled

    def recording(ctx, cell):
        texts = real(ctx, cell)
        labelled = set(ctx.data.splits["train"].select(ctx.budget_rows(cell.budget, cell.seed))["text"])
        pools.append((cell.budget, len(ctx.data.splits["train"]) - len(texts), bool(set(texts) & labelled)))
        return texts

    monkeypatch.setattr(embedding_strategies, "_unlabeled", recording)
    names = ["feature_extraction_self_training", "feature_extraction_zero_shot_head_self_training"]
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names))
    # every training text but the k-shot rows (fewer than the 3,000 kept at most), none of them labelled rows
    assert sorted(pools) == [(2, 4, False), (2, 4, False), (4, 8, False), (4, 8, False)]
    assert len(result.records) == 4
    for record in result.records:
        assert record["self_training_per_class"] in (0, 8, 32, 128) and record["pseudo_rows"] >= 0
        assert 0 <= record["metrics"]["accuracy"] <= 1
        # the count is a choice of the ladder's in-budget selection, made with the head's, on the same folds
        chosen = record["selection"]["chosen"]
        assert chosen["self_training_per_class"] == record["self_training_per_class"]
        assert {p["params"]["self_training_per_class"] for p in record["selection"]["grid"]} == {0, 8, 32, 128}
    assert get_strategy(names[0]).settings is not get_strategy("feature_extraction").settings


def test_setfit_with_label_texts_trains_its_own_bodies_on_them(tiny_bert_folder, sentiment_csv, tmp_path, monkeypatch):
    from setfit import Trainer

    seen, real = [], Trainer.train_embeddings

    def recording(self, x_train, y_train, *args, **kwargs):
        seen.append(len(x_train))
        return real(self, x_train, y_train, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_embeddings", recording)
    names = ["setfit_zero_shot_head", "setfit_label_texts_zero_shot_head"]
    result = run_compare(*ladder_args(tiny_bert_folder, tmp_path / "ladder", sentiment_csv, strategies=names,
                                      setfit_max_steps=2, budgets=["2"], selection="cv", selection_folds=2))
    records = {r["strategy"]: r for r in result.records}
    extra = records[names[1]]["label_text_rows"]
    assert extra > 0 and records[names[0]]["label_text_rows"] == 0
    # per strategy 2 fold bodies x 3 lengths on 2 of the 4 rows, then the final body on the 4: the strategies
    # share no body, and every body of the second has the label texts appended
    assert seen == [2] * 6 + [4] + [2 + extra] * 6 + [4 + extra]
    assert records[names[1]]["selection"]["family"] == records[names[0]]["selection"]["family"]
