"""Kill a recipe process with SIGKILL at a chosen point of its run, then resume it (issue #19).

A test asks for a recipe run that stops at a point: right after the Trainer's ``on_save`` callbacks (they run once
``checkpoint-N`` is completely written, method state included), or after any other function's ``count``-th call
(a few-shot run stored, a ladder cell cached). The run is ``recipes/<name>.py`` executed as a script (``__main__``,
its flags in ``sys.argv``) in a process of its own; at the point it writes a flag file and waits, and the test kills
it with SIGKILL. The folder then holds exactly what a run killed right after that point leaves, with no race against
a half-written checkpoint or against the run finishing first.

Starting Python, torch, transformers and the methods' libraries costs several seconds a process, more than a tiny
run. So one helper process (:class:`RecipeForker`, one per test module) imports them once and forks a process per
recipe run; the import happens while the first test runs its uninterrupted reference run.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The Trainer's ``on_save`` callbacks: they run once ``checkpoint-N`` is completely written.
AFTER_CHECKPOINT = "transformers.trainer_callback:CallbackHandler.on_save"
#: Longest a paused run waits for its SIGKILL.
PAUSE_LIMIT_S = 600
#: Imported once by the helper process, before it forks the recipe runs.
PRELOAD = ("torch", "transformers", "peft", "sklearn.linear_model", "scipy.optimize", "datasets", "matplotlib.pyplot",
           "sentence_transformers", "setfit", "tlnlp.methods", "tlnlp.runs", "tlnlp.training", "tlnlp.tasks")


class RecipeForker:
    """A helper process that imports the heavy libraries once, then forks one process per recipe run."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.recipes.kill_resume"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def start(self, recipe: str, flags: list[str], log: Path, pause_at: str = AFTER_CHECKPOINT,
              count: int = 1) -> PausedRun:
        """Start ``recipes/<recipe>.py flags`` in a forked process that stops at a point of its run.

        Args:
            recipe: The recipe's name (``classification``, ``question_answering``...).
            flags: Its command-line flags.
            log: File that receives the run's stdout and stderr (quoted when it does not reach the point).
            pause_at: ``module:attribute.path`` of the function after whose call the run stops (looked up where
                the recipe calls it).
            count: Which call of it (1: the first).

        Returns:
            The run, started as soon as the helper is ready; :meth:`PausedRun.kill` waits for the point and kills it.
        """
        flag = log.with_suffix(".paused")
        request = {"recipe": recipe, "flags": [str(f) for f in flags], "log": str(log), "flag": str(flag),
                   "pause_at": pause_at, "count": count, "test_pid": os.getpid()}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return PausedRun(self, log, flag, f"call {count} of {pause_at}")

    def reply(self) -> dict[str, Any]:
        """The helper's next reply line."""
        line = self.proc.stdout.readline()
        assert line, f"the recipe helper process died (exit {self.proc.poll()})"
        return json.loads(line)

    def close(self) -> None:
        """End the helper process (it holds no state worth a clean exit)."""
        self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()


class PausedRun:
    """A recipe run the helper forked; it waits at its point until :meth:`kill`."""

    def __init__(self, forker: RecipeForker, log: Path, flag: Path, point: str) -> None:
        self.forker, self.log, self.flag, self.point = forker, log, flag, point
        self.killed = False

    def __enter__(self) -> PausedRun:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if not self.killed:  # the test failed before it killed the run: end it now, leave the test's error
            self.kill(timeout=0.0 if kind is not None else 300.0, check=kind is None)

    def kill(self, timeout: float = 300.0, check: bool = True) -> None:
        """Wait until the run reaches its point, SIGKILL it, and check that the kill is what ended it.

        Args:
            timeout: Seconds to wait for the point; the run is killed then in any case.
            check: Assert that the run reached its point and died of the SIGKILL.
        """
        self.killed = True
        pid = self.forker.reply()["pid"]
        deadline = time.monotonic() + timeout
        while not self.flag.exists() and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        status = self.forker.reply()["status"]
        tail = self.log.read_text()[-4000:] if self.log.exists() else ""
        if not check:
            return
        assert self.flag.exists(), f"the run never reached {self.point}:\n{tail}"
        assert status == -signal.SIGKILL, f"the run was not killed (status {status}):\n{tail}"


def run_in_process(recipe: str, flags: list[str]) -> dict[str, float]:
    """Run ``recipes/<recipe>.py``'s ``main`` in this process, its flags parsed as its script parses them.

    Args:
        recipe: The recipe's name.
        flags: Its command-line flags.

    Returns:
        The metrics ``main`` returns.
    """
    from tests.recipes.conftest import load_recipe
    from tlnlp.config import parse_args

    module = load_recipe(recipe)
    return module.main(*parse_args(*module.ARGUMENTS, args=list(flags), defaults=module.DEFAULTS))


def results(out: Path) -> dict[str, Any]:
    """The ``all_results.json`` of the run in folder ``out``."""
    return json.loads((Path(out) / "all_results.json").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _install_pause(target: str, count: int, flag: Path, test_pid: int) -> None:
    """Wrap ``module:attr.path`` so that its ``count``-th call returns into a flag file and a wait.

    The wait lasts until the test's SIGKILL; should the test process (``test_pid``) die first, or 10 minutes pass, the
    run exits by itself, so that no paused run outlives its test.
    """
    module_name, _, path = target.partition(":")
    *owners, name = path.split(".")
    owner: Any = importlib.import_module(module_name)
    for part in owners:
        owner = getattr(owner, part)
    original, calls = getattr(owner, name), []

    def paused(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == count:
            flag.write_text("paused")
            deadline = time.monotonic() + PAUSE_LIMIT_S
            while _alive(test_pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            os._exit(3)
        return value

    setattr(owner, name, paused)


def _run_child(request: dict[str, Any]) -> int:
    """In the forked process: output to the log, the pause in place, then the recipe as a script; its exit code."""
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    try:
        _install_pause(request["pause_at"], int(request["count"]), Path(request["flag"]), int(request["test_pid"]))
        script = ROOT / "recipes" / f"{request['recipe']}.py"
        sys.argv = [str(script), *request["flags"]]
        runpy.run_path(str(script), run_name="__main__")
        return 0
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 - any failure of the run is reported through its log and exit code
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _serve() -> None:
    """The helper process: import the heavy libraries, then fork a recipe run per request line on stdin."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(_run_child(request))
        with contextlib.suppress(BrokenPipeError):  # the test process is gone: the run ends by itself
            print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        try:
            print(json.dumps({"status": code}), flush=True)
        except BrokenPipeError:
            return


if __name__ == "__main__":
    _serve()
