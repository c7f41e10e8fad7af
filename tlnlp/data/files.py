"""Read local csv, tsv, json, jsonl and parquet files into :class:`~tlnlp.data.validation.Table` objects.

The text formats are parsed here rather than by ``datasets`` so that every row keeps the line number the user
sees in an editor (errors point at it), text cells are never guessed into numbers or NaN (``"NA"`` stays a
text), and a bad byte or a broken JSON line is reported where it is.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tlnlp.data.validation import DataError, Table, short

__all__ = ["SUPPORTED_EXTENSIONS", "read_table"]

logger = logging.getLogger(__name__)

#: File extension -> format name.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet",
}
_JSON_SHAPE = ('a JSON file must hold JSON lines (one object per line), a list of objects '
               '([{"text": ..., "label": ...}, ...]) or an object of equal-length columns')


def read_table(path: str | Path, split: str) -> Table:
    """Read one data file, chosen by its extension.

    Args:
        path: A .csv, .tsv, .json (JSON lines or a JSON array), .jsonl or .parquet file.
        split: The split it provides (for messages).

    Returns:
        The file's columns with the row numbers a user sees (lines for text formats, records for the others).

    Raises:
        DataError: The file is missing, has an unsupported extension, is not UTF-8, cannot be parsed, or holds
            no rows.
    """
    path = Path(path)
    option = f"--{split}_file" if split != "validation" else "--validation_file"
    kind = SUPPORTED_EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{split} file {path.name!r} ({option}) has the unsupported extension "
            f"{path.suffix or '(none)'!r}. Supported: {', '.join(SUPPORTED_EXTENSIONS)}. Fix: convert the "
            f"file to one of these formats or rename it to match its content."
        )
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"{split} file {str(path)!r} ({option}) {what} (resolved to "
                        f"{str(path.resolve())!r}). Fix: check the path; relative paths start from the "
                        f"current working directory.")
    source = path.name
    if kind == "parquet":
        table = _read_parquet(path, split, source)
    else:
        text = _decode(path.read_bytes(), split, source)
        if kind in ("csv", "tsv"):
            table = _read_delimited(text, "," if kind == "csv" else "\t", split, source)
        else:
            table = (_read_json_lines if kind == "jsonl" else _read_json)(text, split, source)
            if "\\u" in text:  # only a JSON escape can make half a UTF-16 pair
                _check_surrogates(table, split)
    if not len(table):
        raise DataError(f"{split} data ({source}) has no rows{' below its header' if table.columns else ''}. Fix: "
                        f"add data rows (one example each), or check that {option} names the right file.")
    return table


def _check_surrogates(table: Table, split: str) -> None:
    r"""Refuse a lone surrogate (JSON ``"\ud800"``): half of a UTF-16 pair is no character, and no file can hold it."""
    for name, values in table.columns.items():
        for i, value in enumerate(values):
            try:
                json.dumps([name, value], ensure_ascii=False, default=str).encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(
                    f"{split} data ({table.source}), {table.unit} {table.row_numbers[i]}, column {name!r}: "
                    f"{short(value)} holds a lone surrogate escape (\\ud800-\\udfff), half of a UTF-16 pair and "
                    f"not a character. Fix: write the character itself (the file is UTF-8), or escape both halves "
                    f"of its pair."
                ) from None


def _decode(data: bytes, split: str, source: str) -> str:
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line = data.count(b"\n", 0, offset) + 1
        start = data.rfind(b"\n", 0, offset) + 1
        column = offset - start + 1
        context = data[max(start, offset - 30): offset + 10].decode("utf-8", errors="replace")
        raise DataError(
            f"{split} data ({source}) is not UTF-8: byte {data[offset:offset + 1].hex(' ')!r} at byte offset "
            f"{offset} (line {line}, column {column}, near {context!r}) is not valid UTF-8. Fix: save the "
            f"file as UTF-8 in your editor or spreadsheet, or re-encode it, e.g. "
            f"`iconv -f WINDOWS-1252 -t UTF-8 {source} > utf8_{source}` (use the file's real encoding after "
            f"-f)."
        ) from None


def _columns_from_records(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    names: dict[str, None] = {}
    for record in records:
        for key in record:
            names.setdefault(str(key), None)
    return {name: [record.get(name) for record in records] for name in names}


@contextmanager
def _field_limit(size: int) -> Iterator[None]:
    """Let the csv module read cells of up to ``size`` characters (its default limit is 131,072)."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, size))
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _read_delimited(text: str, delimiter: str, split: str, source: str) -> Table:
    with _field_limit(len(text)):  # a long text in one cell is data, not a quoting error
        return _parse_delimited(text, delimiter, split, source)


def _parse_delimited(text: str, delimiter: str, split: str, source: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    numbers: list[int] = []
    last_line = 0
    try:
        for record in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip() and header is not None):
                continue
            if header is None:
                header = [name.strip() for name in record]
                width = len(header)
                continue
            if len(record) != width:
                raise DataError(
                    f"{split} data ({source}), line {first_line}: {len(record)} fields, but the header has "
                    f"{width} ({', '.join(map(repr, header))}); row: {short(delimiter.join(record))}. "
                    f"Fix: quote fields that contain {delimiter!r}, quotes or line breaks (\"like, this\"), "
                    f"or use the right file extension (.csv is comma-separated, .tsv tab-separated)."
                )
            rows.append(record)
            numbers.append(first_line)
    except csv.Error as err:  # strict quoting: an unclosed quote does not swallow the rest of the file
        unclosed = "unexpected end of data" in str(err)
        problem = "a quote opened here is never closed" if unclosed else f"cannot parse: {err}"
        raise DataError(f"{split} data ({source}), line {last_line + 1}: {problem}. Fix: close every quoted field, "
                        f"and double each quote inside one (\"say \"\"hi\"\"\").") from None
    if header is None:
        raise DataError(f"{split} data ({source}) is empty. Fix: add a header row and data rows.")
    _check_header(header, split, source)
    columns = {name: [row[j] for row in rows] for j, name in enumerate(header)}
    return Table(columns=columns, row_numbers=numbers, unit="line", source=source)


def _check_header(header: list[str], split: str, source: str) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{split} data ({source}), line 1: the column {name!r} appears twice in the "
                            f"header. Fix: give every column a distinct name.")
        seen.add(name)


def _malformed(split: str, source: str, line: int, err: json.JSONDecodeError | str,
               content: str) -> DataError:
    reason = f"{err.msg} at column {err.colno}" if isinstance(err, json.JSONDecodeError) else err
    shape = _JSON_SHAPE if source.lower().endswith(".json") else (
        'each line of a .jsonl file must be one complete JSON object, e.g. {"text": "...", "label": "..."}')
    return DataError(
        f"{split} data ({source}), line {line}: malformed JSON ({reason}): {short(content)}. Fix: "
        f"{shape}; check the quotes, commas and brackets on that line."
    )


def _read_json_lines(text: str, split: str, source: str) -> Table:
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise _malformed(split, source, number, err, line) from None
        if not isinstance(record, dict):
            raise _malformed(split, source, number, f"expected an object, got {type(record).__name__}", line)
        records.append(record)
        numbers.append(number)
    return Table(columns=_columns_from_records(records), row_numbers=numbers, unit="line", source=source)


def _read_json(text: str, split: str, source: str) -> Table:
    start = len(text) - len(text.lstrip())
    if text[start:start + 1] == "[":
        return _read_json_array(text, start, split, source)
    try:
        return _read_json_lines(text, split, source)
    except DataError as line_error:
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            raise line_error from None
        lists = isinstance(whole, dict) and all(isinstance(v, list) for v in whole.values())
        lengths = {len(v) for v in whole.values()} if lists else set()
        if not lists or len(lengths) > 1:
            raise DataError(f"{split} data ({source}) is JSON but not a table of rows: {_JSON_SHAPE}. Fix: write it "
                            f"in one of these shapes.") from None
        size = lengths.pop() if lengths else 0
        return Table(columns={str(k): list(v) for k, v in whole.items()},
                     row_numbers=list(range(1, size + 1)), unit="row", source=source)


def _read_json_array(text: str, pos: int, split: str, source: str) -> Table:
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    line, counted = 1, 0
    pos += 1
    while True:
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == "]" and not records:
            break
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise _malformed(split, source, err.lineno, err, _line_text(text, err.lineno)) from None
        if not isinstance(record, dict):
            raise _malformed(split, source, line, f"expected an object, got {type(record).__name__}",
                             _line_text(text, line))
        records.append(record)
        numbers.append(line)
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
            continue
        if pos < len(text) and text[pos] == "]":
            break
        line += text.count("\n", counted, pos)
        counted = pos
        raise _malformed(split, source, line, "expected ',' or ']' after an object", _line_text(text, line))
    if text[pos + 1:].strip():
        line += text.count("\n", counted, pos)
        raise _malformed(split, source, line, "unexpected content after the closing ']'",
                         text[pos + 1:].strip())
    return Table(columns=_columns_from_records(records), row_numbers=numbers, unit="line", source=source)


def _line_text(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line - 1] if 0 < line <= len(lines) else "(end of file)"


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_parquet(path: Path, split: str, source: str) -> Table:
    import pandas as pd  # deferred: pandas is slow to import; only parquet files need it

    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"{split} data ({source}) cannot be read as parquet: {str(err).rstrip('.')}. Fix: re-export "
                        "the file (e.g. pandas DataFrame.to_parquet).") from None
    frame = frame.astype(object).where(frame.notna(), None)
    columns = {str(name): frame[name].tolist() for name in frame.columns}
    return Table(columns=columns, row_numbers=list(range(1, len(frame) + 1)), unit="row", source=source)
