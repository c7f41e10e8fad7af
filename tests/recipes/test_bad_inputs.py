"""Every bad input in the catalogue exits with status 2 and one ``error:`` line naming field, value and fix, and
writes nothing; every valid-but-suspicious input loads with the right rows (issue #19).

Most cases run the recipe's ``__main__`` in this process (``runpy``: the same code as the command line, without
the few seconds of imports a new process costs); the cases marked ``subprocess`` run the real command.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from tests.recipes.bad_inputs_catalogue import CONFIG_CASES, DATA_CASES, DIRECTORY, LOADS_CASES, Case
from tests.recipes.bad_inputs_models import MODEL_CASES, MODEL_LOADS
from tests.recipes.conftest import RECIPES, ROOT

#: Every case, grouped as docs/errors.md lists them.
CATALOGUE: list[Case] = [*DATA_CASES, *CONFIG_CASES, *MODEL_CASES, *LOADS_CASES, *MODEL_LOADS]
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING) ")  # tlnlp's log format (tlnlp.training.setup_logging)
_PROGRESS = re.compile(r"\d+%\|")  # a progress bar (tqdm) drawn before the error


def _messages(stderr: str) -> str:
    """stderr without log lines and progress bars: what is left is what the user is told."""
    lines = [line for line in stderr.splitlines() if line.strip() and not _LOG_LINE.match(line)
             and not _PROGRESS.search(line)]
    return "".join(line + "\n" for line in lines)


def test_the_catalogue_is_large_enough():
    failing = [c for c in CATALOGUE if not c.loads]
    assert len(failing) >= 30 and len({c.id for c in CATALOGUE}) == len(CATALOGUE)
    assert {c.id for c in LOADS_CASES} >= {"bom", "crlf", "quoted_newline", "huge_line"}


def test_every_case_is_in_the_docs():
    docs = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    missing = [c.id for c in CATALOGUE if f"`{c.id}`" not in docs]
    assert not missing, f"docs/errors.md does not list: {missing}"


def _build(case: Case, tmp: Path, model: Path) -> list[str]:
    for name, content in case.files.items():
        path = tmp / name
        if content is DIRECTORY:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content, encoding="utf-8")
    if case.prepare is not None:
        case.prepare(tmp, model)
    return [a.replace("{tmp}", str(tmp)).replace("{model}", str(model)) for a in case.argv]


def _in_process(recipe: str, argv: list[str], capsys, monkeypatch) -> tuple[int | str | None, str]:
    script = RECIPES / f"{recipe}.py"
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(script), run_name="__main__")
    return exited.value.code, _messages(capsys.readouterr().err)


def _as_command(recipe: str, argv: list[str], cache: Path) -> tuple[int, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TLNLP_CACHE_DIR": str(cache),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(RECIPES / f"{recipe}.py"), *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    return proc.returncode, _messages(proc.stderr)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_bad_input(case: Case, tmp_path, tiny_bert_dir, capsys, monkeypatch):
    cache = tmp_path / "cache"  # a GGUF conversion's cache, outside the case's folder
    monkeypatch.setenv("TLNLP_CACHE_DIR", str(cache))
    tmp = tmp_path / "case"
    tmp.mkdir()
    argv = _build(case, tmp, tiny_bert_dir)
    if case.loads:
        case.check(argv)
        return
    argv += ["--output_dir", str(tmp / "out")]
    before = _files(tmp)
    if case.subprocess:
        code, err = _as_command(case.recipe, argv, cache)
    else:
        code, err = _in_process(case.recipe, argv, capsys, monkeypatch)
    assert "Traceback" not in err, err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for expected in case.expect:
        assert expected in err, f"{expected!r} not in {err!r}"
    assert _files(tmp) == before, "the run wrote files"
