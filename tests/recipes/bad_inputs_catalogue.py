"""The catalogue of bad inputs (issue #19): what each is, how to build it, and what tlnlp must say about it.

Each :class:`Case` writes its inputs into a fresh folder and names the recipe and flags to run. A case that
``fails`` must exit with status 2 and one ``error: ...`` line holding every ``expect`` substring (the field, the
value and the fix), and write nothing. A case that ``loads`` is a valid file that looks suspicious (a BOM, CRLF
line ends, a quoted newline, a huge line): it must load with the rows its ``check`` expects. ``docs/errors.md``
lists every case by its id (``tests/recipes/test_bad_inputs.py`` keeps the two in step).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.unit.data.helpers import sentiment_rows, to_csv, to_jsonl

#: The tiny BERT folder as the model.
TINY = ("--model_name_or_path", "{model}")
#: Flags of every training case: one step, short sequences, nothing reported.
FAST = ("--report_to", "none", "--max_steps", "1", "--max_seq_length", "16")
#: A small bundled dataset, for the cases whose bad input is not the data.
BUNDLED = ("--dataset_name", "bundled:movie_sentiment", "--max_train_samples", "16", "--max_eval_samples", "8",
           "--max_predict_samples", "8")
DIRECTORY = object()  # a file entry that makes a folder instead


@dataclass(frozen=True)
class Case:
    """One bad (or valid but suspicious) input.

    Attributes:
        id: Short name, listed in docs/errors.md.
        group: data files, configs, models, QA, specs, Hub/offline or GGUF.
        recipe: The recipe run on it (``recipes/<recipe>.py``).
        argv: Its flags; ``{tmp}`` is the case's folder and ``{model}`` the tiny BERT folder.
        files: Files written into ``{tmp}`` first (text, bytes, or :data:`DIRECTORY`).
        expect: Substrings of the error line (for a failing case).
        prepare: Builds more inputs (e.g. a damaged model folder) from ``(tmp, tiny_model_dir)``.
        check: For a case that loads: called with its flags; loads the input and asserts what it holds.
        subprocess: Run as a real ``python recipes/<recipe>.py`` process (a few cases; the rest run in-process).
    """

    id: str
    group: str
    recipe: str = "classification"
    argv: tuple[str, ...] = ()
    files: dict[str, Any] = field(default_factory=dict)
    expect: tuple[str, ...] = ()
    prepare: Callable[[Path, Path], None] | None = None
    check: Callable[[list[str]], None] | None = None
    subprocess: bool = False

    @property
    def loads(self) -> bool:
        """Whether the input is valid and must load."""
        return self.check is not None


def _data(case_id: str, name: str, content: Any, *expect: str, extra: tuple[str, ...] = (), **kw: Any) -> Case:
    """A classification training file that must fail."""
    return Case(case_id, "data files", argv=("--train_file", f"{{tmp}}/{name}", *TINY, *FAST, *extra),
                files={name: content}, expect=expect, **kw)


def _config(case_id: str, argv: tuple[str, ...], *expect: str, yaml: str | None = None, **kw: Any) -> Case:
    """Settings that must be refused before any work (a YAML file ``config.yaml`` when ``yaml`` is given)."""
    files = {"config.yaml": yaml} if yaml is not None else {}
    config = ("--config", "{tmp}/config.yaml") if yaml is not None else ()
    return Case(case_id, "configs", argv=(*config, *TINY, *FAST, *argv), files=files, expect=expect, **kw)


ROWS = sentiment_rows(6)
GOOD_CSV = to_csv(ROWS)


def _mixed_labels() -> str:
    rows = [{"text": r["text"], "label": 1 if r["label"] == "positive" else 0} for r in ROWS]
    rows[3]["label"] = "negative"
    return to_jsonl(rows)


def _with(index: int, **changes: Any) -> str:
    rows = [dict(r) for r in ROWS]
    rows[index].update(changes)
    return to_jsonl(rows)


DATA_CASES = [
    _data("empty_file", "train.csv", "", "train data (train.csv)", "empty", "add a header row"),
    _data("header_only", "train.csv", "text,label\n", "train.csv", "no rows", "add data rows"),
    _data("directory", "train.csv", DIRECTORY, "--train_file", "is a folder", "check the path"),
    _data("missing_file", "nope.csv", None, "--train_file", "nope.csv", "does not exist"),
    _data("unsupported_extension", "train.xlsx", "x", "'.xlsx'", ".csv, .tsv", "convert the file"),
    _data("not_utf8", "train.csv", GOOD_CSV.encode() + "café,positive\n".encode("cp1252"), "not UTF-8",
          "line 14", "'e9'", "iconv"),
    _data("binary_file", "train.csv", bytes(range(256)) * 4, "not UTF-8", "byte offset", "Fix:"),
    _data("mixed_label_types", "train.jsonl", _mixed_labels(), "line 4, column 'label'", "'negative'",
          "integer class ids", "Fix: use one kind of label"),
    _data("wrong_field_count", "train.csv", GOOD_CSV + "unquoted, with a comma,positive\n", "line 14",
          "3 fields", "quote fields"),
    _data("unclosed_quote", "train.csv", GOOD_CSV + '"never closed,positive\nmore,negative\n', "line 14",
          "never closed", "Fix: close every quoted field"),
    _data("text_after_closing_quote", "train.csv", GOOD_CSV + '"quoted"tail,positive\n', "line 14", "cannot parse",
          "Fix: close every quoted field"),
    _data("malformed_jsonl", "train.jsonl", to_jsonl(ROWS[:2]) + '{"text": "x", "label": \n',
          "line 3: malformed JSON", "Fix:"),
    _data("json_trailing_comma", "train.json", "[\n" + ",\n".join(json.dumps(r) for r in ROWS) + ",\n]\n",
          "malformed JSON", "line 14", "commas"),
    _data("jsonl_not_object", "train.jsonl", to_jsonl(ROWS[:2]) + '["a list", "positive"]\n',
          "line 3", "expected an object, got list", "Fix:"),
    _data("json_lone_surrogate", "train.jsonl", to_jsonl(ROWS[:3]) + '{"text": "a\\ud800b", "label": "positive"}\n',
          "line 4, column 'text'", "lone surrogate", "Fix: write the character itself"),
    _data("missing_label_column", "train.csv", to_csv([{"text": r["text"], "labels": r["label"]} for r in ROWS]),
          "no column 'label'", "Did you mean 'labels'?", "Fix: pass --label_column labels"),
    _data("missing_text_column", "train.csv", to_csv([{"review": r["text"], "label": r["label"]} for r in ROWS]),
          "no column 'text' or 'sentence'", "'review'", "--text_column"),
    _data("empty_text", "train.csv", GOOD_CSV + '"   ",positive\n', "line 14, column 'text'", "empty",
          "Fix: fill in the text"),
    _data("null_text", "train.jsonl", _with(4, text=None), "line 5, column 'text'", "null", "Fix:"),
    _data("number_as_text", "train.jsonl", _with(0, text=12), "line 1, column 'text'", "12", "expected text",
          "Fix: quote the value"),
    _data("missing_label", "train.jsonl", _with(2, label=None), "line 3, column 'label'", "missing",
          "Fix: fill in the label"),
    _data("fractional_label", "train.jsonl", _with(1, label=0.25), "line 2, column 'label'", "0.25",
          "regression", "Fix: use class names"),
    _data("nested_label", "train.jsonl", _with(1, label={"a": 1}), "line 2, column 'label'", "{'a': 1}",
          "nested", "Fix:"),
    _data("one_class", "train.csv", to_csv([{"text": f"t {i}", "label": "positive"} for i in range(8)]),
          "at least two classes", "'positive'", "Fix: check --label_column"),
    _data("duplicate_header", "train.csv", "text,label,text\na,positive,b\n", "'text' appears twice",
          "Fix: give every column a distinct name"),
    _data("unseen_validation_label", "train.csv", GOOD_CSV, "validation data (dev.csv), line 2", "'neutral'",
          "never occur in the training data", "Fix:", extra=("--validation_file", "{tmp}/dev.csv"),
          prepare=lambda tmp, _: (tmp / "dev.csv").write_text('text,label\n"meh",neutral\n', encoding="utf-8")),
    _data("corrupt_parquet", "train.parquet", b"PAR1 this is not parquet", "train.parquet", "parquet",
          "Fix: re-export"),
]

CONFIG_CASES = [
    _config("yaml_wrong_type", (*BUNDLED,), "learning_rate", "'fast'", "a number", "Fix:",
            yaml="learning_rate: fast\n", subprocess=True),
    _config("yaml_list_for_number", (*BUNDLED,), "num_train_epochs", "[1, 2]", "a number", "Fix:",
            yaml="num_train_epochs: [1, 2]\n"),
    _config("yaml_bool_for_int", (*BUNDLED,), "per_device_train_batch_size", "True", "an integer", "Fix:",
            yaml="per_device_train_batch_size: true\n"),
    _config("yaml_unknown_key", (*BUNDLED,), "Unknown key 'learning_rat'", "Did you mean 'learning_rate'?",
            yaml="learning_rat: 0.1\n"),
    _config("yaml_not_mapping", (*BUNDLED,), "must be a mapping", "list", yaml="- learning_rate\n- 0.1\n"),
    _config("yaml_syntax", (*BUNDLED,), "not valid YAML", "config.yaml", "line 2", "Fix:",
            yaml="learning_rate: [0.1\n"),
    _config("config_missing", ("--config", "{tmp}/nope.yaml", *BUNDLED), "--config", "nope.yaml",
            "file not found"),
    _config("flag_wrong_type", ("--per_device_train_batch_size", "eight", *BUNDLED),
            "--per_device_train_batch_size", "'eight'", "int", "Fix:"),
    _config("flag_unknown", ("--learnig_rate", "0.1", *BUNDLED), "Unknown flag '--learnig_rate'",
            "Did you mean 'learning_rate'?"),
    _config("flag_bad_choice", ("--lr_scheduler_type", "cosin", *BUNDLED), "--lr_scheduler_type", "'cosin'",
            "choose from", "Fix:"),
    _config("negative_batch_size", ("--per_device_train_batch_size", "-8", *BUNDLED),
            "per_device_train_batch_size=-8", "at least 1", "Fix:"),
    _config("negative_max_seq_length", ("--max_seq_length", "-5", *BUNDLED), "max_seq_length=-5", "positive"),
    _config("negative_samples_per_class", (*BUNDLED,), "train_samples_per_class=-3", "positive",
            yaml="train_samples_per_class: -3\n"),
    _config("negative_learning_rate", ("--learning_rate", "-0.001", *BUNDLED), "learning_rate=-0.001",
            "at least 0", "Fix:"),
    _config("percentage_out_of_range", ("--validation_split_percentage", "80", *BUNDLED),
            "validation_split_percentage=80", "[0, 50)"),
    _config("no_data", (), "No data given", "--dataset_name", "--train_file"),
    _config("two_data_sources", ("--dataset_name", "bundled:movie_sentiment", "--train_file", "{tmp}/x.csv"),
            "dataset_name='bundled:movie_sentiment'", "train_file=", "give only one source"),
    _config("unknown_method", ("--method", "lorra", *BUNDLED), "'lorra'", "Did you mean", "lora"),
    _config("unknown_bundled_dataset", ("--dataset_name", "bundled:movie_sentimnt"), "movie_sentimnt",
            "Did you mean 'movie_sentiment'", "Fix:"),
    _config("validation_file_with_hub_dataset", ("--dataset_name", "someone/data", "--validation_file", "{tmp}/v.csv"),
            "--validation_file", "someone/data", "Fix: give either --dataset_name or --train_file"),
]


def _expect_rows(*rows: tuple[str, str]) -> Callable[[list[str]], None]:
    """A check that loads ``--train_file`` as the classification recipe does and compares its rows."""

    def check(argv: list[str]) -> None:
        from tlnlp.config import DataArgs
        from tlnlp.tasks import load_task_data

        path = argv[argv.index("--train_file") + 1]
        data = load_task_data(DataArgs(train_file=path, validation_split_percentage=0, test_split_percentage=0))
        train = data.splits["train"]
        found = sorted(zip(train["text"], (data.labels[i] for i in train["label"]), strict=True))
        assert found == sorted(rows), found

    return check


HUGE = "word " * 60_000  # 300,000 characters on one line: more than csv's default field limit
LOADS_CASES = [
    Case("bom", "data files", argv=("--train_file", "{tmp}/train.csv"),
         files={"train.csv": b"\xef\xbb\xbftext,label\ngood,positive\nbad,negative\n"},
         check=_expect_rows(("good", "positive"), ("bad", "negative"))),
    Case("crlf", "data files", argv=("--train_file", "{tmp}/train.csv"),
         files={"train.csv": b"text,label\r\ngood,positive\r\nbad,negative\r\n"},
         check=_expect_rows(("good", "positive"), ("bad", "negative"))),
    Case("quoted_newline", "data files", argv=("--train_file", "{tmp}/train.csv"),
         files={"train.csv": 'text,label\n"two\nlines, one cell",positive\n"a ""quote""",negative\n'},
         check=_expect_rows(("two\nlines, one cell", "positive"), ('a "quote"', "negative"))),
    Case("bom_crlf_tsv", "data files", argv=("--train_file", "{tmp}/train.tsv"),
         files={"train.tsv": b"\xef\xbb\xbftext\tlabel\r\n\"tab\tinside\"\t1\r\nplain\t0\r\n"},
         check=_expect_rows(("tab\tinside", "1"), ("plain", "0"))),
    Case("bom_jsonl", "data files", argv=("--train_file", "{tmp}/train.jsonl"),
         files={"train.jsonl": b"\xef\xbb\xbf" + to_jsonl(ROWS[:2]).replace("\n", "\r\n").encode()},
         check=_expect_rows(*((r["text"], r["label"]) for r in ROWS[:2]))),
    Case("huge_line", "data files", argv=("--train_file", "{tmp}/train.csv"),
         files={"train.csv": f"text,label\n{HUGE.strip()},positive\nshort,negative\n"},
         check=_expect_rows((HUGE.strip(), "positive"), ("short", "negative"))),
    Case("na_stays_text", "data files", argv=("--train_file", "{tmp}/train.csv"),
         files={"train.csv": "text,label\nNA,positive\nnull,negative\n"},
         check=_expect_rows(("NA", "positive"), ("null", "negative"))),
]
