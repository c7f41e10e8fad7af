"""A run's hold on its output folder: a lock while it writes, and a marker until its last file is written.

While a run is active its main process holds an exclusive ``flock`` on :data:`LOCK_FILE` in the output folder; the
operating system drops it when the process dies, so a lock is never stale, and a second run on the folder is
refused at once. :data:`MARKER` (JSON: pid, host, start time, program, recipe) sits in the folder from the run's
first file until its last: a run that crashed or was killed leaves it, and readers of run folders
(:func:`check_finished`: ``load_pipeline``, ``push_run``, the compare ladder) refuse such a folder.

The hold starts when :func:`claim_output_dir` is called (``prepare_output_dir`` calls it after its checks) if the
folder exists, else when the run first writes there (:func:`ensure_claimed`: the Trainer, ``finish`` and the other
writers call it), so a run refused before its first file leaves no folder behind. :func:`close_output_dir` ends it
(:func:`mark_finished`, then :func:`release_output_dir`). Only the main process of a multi-process launch
(``RANK`` 0) holds a folder. Where ``fcntl`` is missing (Windows) the marker is written but nothing is locked.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlnlp.config.launch import current_launch
from tlnlp.errors import UserError

#: ``fcntl`` where the platform has it (not on Windows: there the marker still marks an unfinished folder).
fcntl: Any = importlib.import_module("fcntl") if os.name == "posix" else None

__all__ = ["ENSEMBLE_MANIFEST", "LOCK_FILE", "MARKER", "OutputDirError", "UnfinishedRunError", "check_finished",
           "claim_output_dir", "close_output_dir", "ensure_claimed", "has_content", "is_main_process", "mark_finished",
           "refuse_busy", "release_output_dir", "unfinished_info", "write_text_atomic"]

logger = logging.getLogger(__name__)

#: In an output folder from a run's first file until its last; a folder that holds it is an unfinished run.
MARKER = ".tlnlp-unfinished"
#: Locked (``flock``) by the run writing into the folder; removed when the run ends.
LOCK_FILE = ".tlnlp.lock"
_OWN_FILES = (MARKER, LOCK_FILE)
#: An ensemble run's manifest (``{"members": [folder, ...], "weights": [...], "labels": [...]}``, folders relative
#: to the run's folder), written by :mod:`tlnlp.ensemble`; loading and pushing read it.
ENSEMBLE_MANIFEST = "ensemble.json"


class OutputDirError(UserError, FileExistsError):
    """The output folder is not safe to write into as asked (another run's files, or another run writing there)."""


class UnfinishedRunError(UserError, RuntimeError):
    """The folder holds an unfinished run (:data:`MARKER`): interrupted, or still being written."""


@dataclass
class _Claim:
    """This process's hold on one output folder."""

    folder: Path
    trains: bool
    may_write_over: bool
    fd: int | None = None
    active: bool = False


_CLAIMS: dict[Path, _Claim] = {}


def _key(folder: str | os.PathLike[str]) -> Path:
    return Path(folder).resolve()


def is_main_process() -> bool:
    """Whether this is the main process of its launch (``RANK``, else ``LOCAL_RANK``, is 0 or unset)."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``<path>.tmp``, then rename it to ``path``: readers see the old file or the whole new one."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(target)


def has_content(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` exists and holds anything besides a run's marker and lock (and their partial writes)."""
    path = Path(folder)
    if not path.is_dir():
        return False
    return any(p.name not in _OWN_FILES and not p.name.startswith(f"{MARKER}.") for p in path.iterdir())


def unfinished_info(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """What the marker of an unfinished run in ``folder`` records (``{}`` when unreadable), or None if it has none."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict[str, Any] | None) -> str:
    info = info or {}
    who = f"pid {info['pid']}" if info.get("pid") is not None else "an unknown process"
    host = f" on {info['host']}" if info.get("host") else ""
    when = f", started {info['started']}" if info.get("started") else ""
    what = f" ({info['recipe']})" if info.get("recipe") else ""
    return f"{who}{host}{what}{when}"


def check_finished(folder: str | os.PathLike[str], action: str = "reading it") -> None:
    """Refuse a folder that holds an unfinished run.

    The folder an evaluation-only run of this process writes into (e.g. results written into the evaluated model's
    own folder) is not refused: its model files are not being written.

    Args:
        folder: A run's output folder.
        action: What the caller is about to do, for the message (``"loading it"``).

    Raises:
        UnfinishedRunError: ``folder`` holds :data:`MARKER`; the message says who wrote it and how to fix it.
    """
    info = unfinished_info(folder)
    if info is None:
        return
    claim = _CLAIMS.get(_key(folder))
    if claim is not None and claim.active and not claim.trains:
        return
    raise UnfinishedRunError(
        f"{folder} is an unfinished run: it holds {MARKER} (the run was interrupted, or is still going: "
        f"{_describe(info)}), so {action} would read half-written files. Resume it with --resume_from_checkpoint "
        "last, or run it again with --overwrite_output_dir.")


def _busy(folder: Path) -> OutputDirError:
    return OutputDirError(
        f"output_dir={str(folder)!r} is in use: another run is writing there ({_describe(unfinished_info(folder))}; "
        f"it holds {LOCK_FILE}). Wait for that run to end, or choose another --output_dir.")


def refuse_busy(folder: str | os.PathLike[str]) -> None:
    """Main process: refuse a folder whose lock another live process holds (creates and locks nothing).

    Raises:
        OutputDirError: another run is writing into ``folder``.
    """
    path = Path(folder) / LOCK_FILE
    claim = _CLAIMS.get(_key(folder))
    if fcntl is None or not is_main_process() or not path.is_file() or (claim is not None and claim.fd is not None):
        return
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(Path(folder)) from None
    except OSError:
        pass
    finally:
        os.close(fd)


def _lock(folder: Path) -> int | None:
    """An fd holding the folder's lock; raises when another process holds it; None where locking is unavailable."""
    if fcntl is None:
        logger.info("No output-folder lock on this platform: a second run on %s would not be refused.", folder)
        return None
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(folder) from None
        except OSError as err:  # e.g. a file system without flock
            os.close(fd)
            logger.info("Cannot lock %s (%s): a second run on %s would not be refused.", path, err, folder)
            return None
        try:  # the holder before us may have removed the file between our open and our lock: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _write_marker(claim: _Claim) -> None:
    launch = current_launch()
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "program": Path(sys.argv[0]).name if sys.argv else "",
            "recipe": launch.recipe, "trains": claim.trains}
    write_text_atomic(claim.folder / MARKER, json.dumps(info, indent=2) + "\n")


def _activate(claim: _Claim, recheck: bool) -> None:
    """Lock the folder and write the marker (creating the folder); ``recheck``: refuse files that appeared since."""
    claim.folder.mkdir(parents=True, exist_ok=True)
    if claim.fd is None:
        claim.fd = _lock(claim.folder)
    if recheck and not claim.may_write_over and has_content(claim.folder):
        release_output_dir(claim.folder)
        raise OutputDirError(f"output_dir={str(claim.folder)!r} was empty when this run started, but another run "
                             "has written into it since. Choose another --output_dir, or add "
                             "--overwrite_output_dir to write over it.")
    _write_marker(claim)
    claim.active = True


def claim_output_dir(output_dir: str | os.PathLike[str], *, trains: bool = True,
                     may_write_over: bool = True) -> None:
    """Hold ``output_dir`` for this run (main process only; call it after the folder's checks).

    An existing folder is locked and marked now; a missing one when the run first writes there
    (:func:`ensure_claimed`). A folder this process already holds (an earlier run of this process that stopped
    midway) is taken over.

    Args:
        output_dir: The run's output folder.
        trains: Whether the run writes a model there (an evaluation-only run may read its own folder's model).
        may_write_over: Whether the run may write over files (``--overwrite_output_dir`` or a resume): else files
            that appear in a missing folder before the run's first write are refused.

    Raises:
        OutputDirError: another run is writing into the folder.
    """
    if not is_main_process():
        return
    key = _key(output_dir)
    for stale in [k for k, c in _CLAIMS.items() if k != key and not c.active]:  # earlier runs that never wrote
        del _CLAIMS[stale]
    claim = _CLAIMS.setdefault(key, _Claim(Path(output_dir), trains, may_write_over))
    claim.trains, claim.may_write_over = trains, may_write_over
    if claim.active or Path(output_dir).is_dir():
        _activate(claim, recheck=False)


def ensure_claimed(path: str | os.PathLike[str]) -> None:
    """Before writing into ``path``: start the hold on the output folder that is, or holds, ``path`` if it waits.

    Raises:
        OutputDirError: another run started writing into that folder meanwhile.
    """
    if not _CLAIMS:
        return
    target = _key(path)
    for key, claim in list(_CLAIMS.items()):
        if not claim.active and (key == target or key in target.parents):
            _activate(claim, recheck=True)


def mark_finished(output_dir: str | os.PathLike[str]) -> None:
    """Remove the marker of the folder this process holds: call it once every file of the run is written."""
    claim = _CLAIMS.get(_key(output_dir))
    if claim is not None and claim.active:
        (claim.folder / MARKER).unlink(missing_ok=True)


def release_output_dir(output_dir: str | os.PathLike[str]) -> None:
    """End this process's hold on ``output_dir``: remove the lock file and unlock it (the marker stays, if any)."""
    claim = _CLAIMS.pop(_key(output_dir), None)
    if claim is None or claim.fd is None:
        return
    (claim.folder / LOCK_FILE).unlink(missing_ok=True)  # while still locked, so nobody locks the removed file
    os.close(claim.fd)


def close_output_dir(output_dir: str | os.PathLike[str]) -> None:
    """The last step of a run: the folder is finished (:func:`mark_finished`) and released."""
    mark_finished(output_dir)
    release_output_dir(output_dir)
