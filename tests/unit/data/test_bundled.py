"""Bundled corpora: sizes, labels, splits without overlap, determinism, and the cleaning rules."""

from __future__ import annotations

import pytest

from tlnlp.assets import BUNDLED_FILES, AssetError, asset_path
from tlnlp.data import CORPORA, DataError, describe_corpora
from tlnlp.data.bundled import TREC_TRAIN_LINES
from tlnlp.data.splits import normalise_whitespace
from tlnlp.tasks import load_task_data

from .helpers import make_args

# name -> (train, validation, test, labels or number of labels); also printed in docs/datasets.md
EXPECTED = {
    "movie_sentiment": (8056, 1007, 1007, ["negative", "positive"]),
    "amazon_sentiment": (2381, 298, 298, ["negative", "positive"]),
    "tweet_sentiment": (2746, 343, 343, ["negative", "positive"]),
    "nyt_sentiment": (2345, 293, 293, ["negative", "positive"]),
    "trec6": (4305, 538, 538, ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]),
    "trec50": (4304, 538, 538, 50),
    "sms_spam": (3610, 451, 451, ["ham", "spam"]),
    "bbc_news": (1701, 212, 212, ["business", "entertainment", "politics", "sports", "tech"]),
}


@pytest.fixture(scope="module", autouse=True)
def _assets_installed():
    try:
        asset_path(BUNDLED_FILES["movie_snippets"])
    except AssetError as err:  # pragma: no cover - `make test` installs them
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def loaded():
    """Every preset loaded once (about a second in all)."""
    return {name: load_task_data(make_args(dataset_name=f"bundled:{name}")) for name in CORPORA.names()}


def test_every_preset_is_registered():
    assert sorted(EXPECTED) == CORPORA.names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sizes_labels_and_metadata(loaded, name):
    data = loaded[name]
    n_train, n_val, n_test, labels = EXPECTED[name]
    sizes = {s: len(d) for s, d in data.splits.items()}
    assert sizes == {"train": n_train, "validation": n_val, "test": n_test}
    if isinstance(labels, int):
        assert data.num_labels == labels and data.labels == sorted(data.labels)
    else:
        assert data.labels == labels
    assert data.name == f"bundled:{name}" and data.version == "1.0.0" and data.license and data.description
    assert not data.multi_label and not data.has_text_pair and data.hub_dataset_id is None
    assert set(data.splits["train"]["label"]) == set(range(data.num_labels))  # every class is trained on
    assert data.splits["train"].features["label"].names == data.labels


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_no_text_in_two_splits_and_no_duplicates(loaded, name):
    texts = {s: [normalise_whitespace(t) for t in d["text"]] for s, d in loaded[name].splits.items()}
    everything = [t for part in texts.values() for t in part]
    assert len(everything) == len(set(everything))
    assert all(t == normalise_whitespace(t) and t for t in everything)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_splits_are_stratified_and_shuffled(loaded, name):
    data = loaded[name]
    train, test = list(data.splits["train"]["label"]), list(data.splits["test"]["label"])
    for class_id in set(train):
        share_train = train.count(class_id) / len(train)
        share_test = test.count(class_id) / len(test)
        assert abs(share_train - share_test) < 0.02 + 3 / len(test)
    first = data.splits["test"]["label"][:50]
    assert len(set(first)) > 1  # not grouped by class as in the source files


def test_bundled_splits_ignore_the_user_seed_and_are_deterministic(loaded):
    again = load_task_data(make_args(dataset_name="bundled:movie_sentiment", split_seed=7))
    assert again.fingerprint == loaded["movie_sentiment"].fingerprint
    assert again.splits["test"]["text"] == loaded["movie_sentiment"].splits["test"]["text"]
    args = make_args(dataset_name="bundled:movie_sentiment", max_train_samples=100)
    other_seed = load_task_data(args, seed=3)
    assert other_seed.splits["validation"]["text"] == loaded["movie_sentiment"].splits["validation"]["text"]


def test_vader_rule_drops_near_neutral_rows():
    preset = CORPORA.get("nyt_sentiment")
    texts, labels = preset.reader()
    assert len(texts) == 2970 and set(labels) == {"negative", "positive"}  # 5,190 rows, |score| >= 0.5 kept


def test_trec_uses_only_the_last_5452_lines():
    path = asset_path(BUNDLED_FILES["trec_questions"])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) > TREC_TRAIN_LINES == 5452
    texts, labels = CORPORA.get("trec50").reader()
    assert len(texts) == TREC_TRAIN_LINES
    assert f"{labels[0]} {texts[0]}" == lines[-TREC_TRAIN_LINES]
    assert f"{labels[-1]} {texts[-1]}" == lines[-1]
    coarse = CORPORA.get("trec6").reader()[1]
    assert coarse[0] == labels[0].split(":")[0] and len(set(labels)) == 50 and len(set(coarse)) == 6


def test_sms_spam_duplicates_are_removed_before_splitting(loaded):
    texts, labels = CORPORA.get("sms_spam").reader()
    assert len(texts) == 4837 and labels.count("spam") == 638
    assert sum(len(d) for d in loaded["sms_spam"].splits.values()) == 4512


def test_bbc_reads_every_article_including_the_cp1252_one(loaded):
    texts, labels = CORPORA.get("bbc_news").reader()
    assert len(texts) == 2225 and sorted(set(labels)) == EXPECTED["bbc_news"][3]
    assert not any("\ufffd" in t for t in texts)
    assert sum("£" in t for t in texts) > 600
    rows = [t for part in loaded["bbc_news"].splits.values() for t in part["text"]]
    assert any(t.startswith("Ad sales boost Time Warner profit Quarterly profits") for t in rows)


def test_unknown_preset_suggests_close_name():
    with pytest.raises(DataError, match="movie_sentiment"):
        load_task_data(make_args(dataset_name="bundled:movie_sentimnt"))


def test_describe_corpora_lists_every_preset():
    rows = {r["name"]: r for r in describe_corpora()}
    assert sorted(rows) == sorted(EXPECTED)
    for name, (n_train, n_val, n_test, labels) in EXPECTED.items():
        row = rows[name]
        assert row["num_rows"] == n_train + n_val + n_test and row["version"] == "1.0.0"
        assert row["num_labels"] == (labels if isinstance(labels, int) else len(labels))
        assert {"description", "license"} <= set(row)


def test_docs_print_the_real_split_sizes():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "datasets.md").read_text(encoding="utf-8")
    for name, (n_train, n_val, n_test, _) in EXPECTED.items():
        row = next(line for line in docs.splitlines() if line.startswith(f"| `bundled:{name}` |"))
        assert f"| {n_train:,} / {n_val:,} / {n_test:,} |" in row
