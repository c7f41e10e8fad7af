"""Fuzzing the file readers: any csv/tsv/json/jsonl input either loads into well-formed splits or raises DataError.

Never another exception: a user's file, however broken, gets a message that says where and how to fix it, not a
traceback. Three kinds of input: random bytes, random text, and rows of random values written in each format.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tlnlp.config import DataArgs
from tlnlp.data import DataError
from tlnlp.tasks import load_task_data

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "tlnlp-hypothesis")  # its caches, not in the checkout
FORMATS = ("csv", "tsv", "json", "jsonl")
#: Seeded (the same inputs on every run, so the suite stays deterministic) and with no example database on disk;
#: set TLNLP_FUZZ_EXAMPLES to a larger number and TLNLP_FUZZ_RANDOM=1 to search further.
FUZZ = settings(max_examples=int(os.environ.get("TLNLP_FUZZ_EXAMPLES", "120")), deadline=None, database=None,
                derandomize=not os.environ.get("TLNLP_FUZZ_RANDOM"), suppress_health_check=[HealthCheck.too_slow])

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                     st.sampled_from(["positive", "negative", "1", "0", "", " ", "NA", '"', "a,b", "x\ny"]),
                     st.text(max_size=12), st.text(st.characters(categories=["Cs", "Ll", "Zs"]), max_size=3))
#: Pieces of csv and JSON, put together at random: closer to a broken real file than random characters.
_TOKENS = ['"text"', '"label"', "text", "label", ":", ",", "\t", "{", "}", "[", "]", "\n", "\r\n", "\ufeff",
           " ", '"', '""', "positive", "negative", "1", "0", "-2", "0.5", "1e400", "NaN", "Infinity", "null", "true",
           "\\ud800", "\\u00e9", "\\", "é", "\x00"]
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4),
                                                                                             inner, max_size=2),
                       max_leaves=4)
_rows = st.lists(st.fixed_dictionaries({"text": _values, "label": _values},
                                       optional={"extra": _values, "sentence": _values}), max_size=12)


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.ERROR)  # the warnings about tiny splits are expected here


def _load(content: bytes, fmt: str) -> Any:
    """Write ``content`` as ``train.<fmt>`` and load it as the classification recipe does; None for a DataError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"train.{fmt}"
        path.write_bytes(content)
        try:
            return load_task_data(DataArgs(train_file=str(path)))
        except DataError as err:
            assert "\n" not in str(err) and "Fix" in str(err), str(err)  # one line that says how to fix it
            return None


def _check_well_formed(data: Any) -> None:
    assert data is not None and len(data.labels) >= 2 and len(set(data.labels)) == len(data.labels)
    assert all(isinstance(label, str) for label in data.labels)
    for split in data.splits.values():
        for text in split["text"]:
            assert isinstance(text, str) and text.strip()
        for label in split["label"]:
            ids = label if data.multi_label else [label]
            assert all(0 <= i < len(data.labels) for i in ids)
    assert len(data.fingerprint) == 64


def _check(content: bytes, fmt: str) -> None:
    data = _load(content, fmt)
    if data is not None:
        _check_well_formed(data)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _write(rows: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt in ("csv", "tsv"):
        out = io.StringIO()
        names = list(dict.fromkeys(k for row in rows for k in row)) or ["text", "label"]
        writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[_cell(row.get(k)) for k in names] for row in rows])
        return out.getvalue().encode("utf-8", "surrogatepass")
    if fmt == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    return json.dumps(rows, indent=1).encode()


@FUZZ
@given(content=st.binary(max_size=300), fmt=st.sampled_from(FORMATS))
def test_random_bytes(content, fmt):
    _check(content, fmt)


@FUZZ
@given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=80), fmt=st.sampled_from(FORMATS))
def test_random_text(tokens, fmt):
    _check("".join(tokens).encode("utf-8"), fmt)


@FUZZ
@given(rows=_rows, fmt=st.sampled_from(FORMATS))
def test_rows_of_random_values(rows, fmt):
    _check(_write(rows, fmt), fmt)


@FUZZ
@given(rows=_rows, bom=st.booleans(), crlf=st.booleans())
def test_bom_and_crlf_change_nothing(rows, bom, crlf):
    """A BOM and CRLF line ends are how some editors save a file: the same rows load, or the same error."""
    plain = _write(rows, "csv")
    variant = (b"\xef\xbb\xbf" if bom else b"") + (plain.replace(b"\n", b"\r\n") if crlf else plain)
    first, second = _load(plain, "csv"), _load(variant, "csv")
    assert (first is None) == (second is None)
    if first is not None:
        texts = [text.replace("\r\n", "\n") for text in second.splits["train"]["text"]]
        assert first.splits["train"]["text"] == texts
