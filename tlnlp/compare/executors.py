"""Where the ladder's cells run: here, in parallel processes on this machine, or as Ray tasks on a cluster.

Cells are independent: each loads its model, seeds itself and scores the same test rows. With ``--executor local``
and ``--workers N`` (N > 1) the cells run in N spawned processes, each pinned to its own CPU cores (``--cell_threads``
threads, by default the cores shared out evenly) or, when the ladder runs on CUDA, to its own GPU (round robin).
With ``--executor ray`` each cell is a Ray task asking for ``--cell_threads`` CPUs (and one GPU on CUDA), on the
cluster at ``--ray_address`` or on a Ray started here. Every worker rebuilds the run's
:class:`~tlnlp.compare.strategies.CellContext` once from the parsed arguments and hands each finished record back to
this process, which writes it into the cell cache (atomically) as soon as it arrives: a killed run loses only the
cells in flight.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import datasets
import torch
import transformers

from tlnlp.compare.strategies import CellContext, get_strategy
from tlnlp.errors import UserError

if TYPE_CHECKING:
    from tlnlp.compare.args import CompareArgs
    from tlnlp.compare.cells import Cell
    from tlnlp.config import DataArgs, ModelArgs

__all__ = ["EXECUTORS", "ContextSpec", "ExecutorError", "compute_cell", "cpu_slots", "run_cells"]

logger = logging.getLogger(__name__)

#: The values of ``--executor``.
EXECUTORS = ("local", "ray")

#: The worker process's context (built once per process by the initializer or the first Ray task).
_WORKER: dict[str, Any] = {}

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class ExecutorError(UserError, RuntimeError):
    """A worker of the ladder failed outside a cell (it died, or Ray is missing)."""


@dataclass(frozen=True)
class ContextSpec:
    """What a worker needs to rebuild the run's :class:`CellContext`.

    Attributes:
        build: ``build(model_args, data_args, args) -> CellContext`` (a module-level function: workers import it).
        model_args: The run's ``ModelArgs``.
        data_args: The run's ``DataArgs``.
        args: The run's ``CompareArgs``.
        progress_bars: Whether the datasets and transformers progress bars show (off in a worker when off here).
    """

    build: Callable[[ModelArgs, DataArgs, CompareArgs], CellContext]
    model_args: ModelArgs
    data_args: DataArgs
    args: CompareArgs
    progress_bars: bool = field(default_factory=datasets.utils.is_progress_bar_enabled)

    def context(self) -> CellContext:
        """The context, built on the first call in this process and kept for its later cells."""
        key = repr((self.model_args, self.data_args, self.args))
        if _WORKER.get("key") != key:
            if not self.progress_bars:  # as in the main process, whose one bar counts the cells
                datasets.disable_progress_bars()
                transformers.utils.logging.disable_progress_bar()
            _WORKER.update(key=key, ctx=self.build(self.model_args, self.data_args, self.args))
        return _WORKER["ctx"]


def compute_cell(ctx: CellContext, cell: Cell) -> dict[str, Any]:
    """Run one cell's strategy; its record with the cell's identity, device and wall time."""
    start = time.perf_counter()
    record = get_strategy(cell.strategy).run(ctx, cell)
    record.update({"strategy": cell.strategy, "budget": cell.budget, "seed": cell.config["seed"],
                   "num_labels": ctx.data.num_labels, "config": cell.config, "device": ctx.device,
                   "cell_seconds": time.perf_counter() - start})
    return record


def cpu_slots(workers: int, threads: int | None, cores: Sequence[int] | None = None) -> list[list[int]]:
    """The CPU cores of each of ``workers`` workers: ``threads`` each (default: the cores shared out evenly).

    Workers get disjoint cores while there are enough; beyond that the cores are handed out again from the start.
    """
    available = sorted(cores if cores is not None else _usable_cores())
    each = threads or max(1, len(available) // workers)
    return [[available[(w * each + i) % len(available)] for i in range(each)] for w in range(workers)]


def _usable_cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _pin(cores: Sequence[int], gpu: int | None) -> None:
    """Pin this process to ``cores`` (where the OS allows) and ``gpu``; torch uses one thread a core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cores))
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    torch.set_num_threads(len(cores))


def _init_process(spec: ContextSpec, slots: Any) -> None:
    """Initializer of a local worker process: take a slot (cores, GPU), pin to it, build the context."""
    cores, gpu = slots.get()
    _pin(cores, gpu)
    spec.context()


def _process_cell(spec: ContextSpec, cell: Cell) -> dict[str, Any]:
    return compute_cell(spec.context(), cell)


@contextlib.contextmanager
def _thread_environment(threads: int) -> Iterator[None]:
    """Thread-count variables for processes started inside the block (read when their libraries load)."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _gpu_slots(ctx: CellContext, workers: int) -> list[int | None]:
    """Each worker's GPU (round robin) when the ladder runs on CUDA and no GPU was named, else None."""
    if ctx.args.device not in ("auto", "cuda") or not ctx.device.startswith("cuda"):
        return [None] * workers
    count = max(1, torch.cuda.device_count())
    return [w % count for w in range(workers)]


def _run_processes(ctx: CellContext, spec: ContextSpec, todo: Sequence[Cell],
                   on_done: Callable[[Cell, dict[str, Any]], None]) -> None:
    workers = min(ctx.args.workers, len(todo))
    method = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch threads or CUDA state
    slots = method.Queue()
    cores = cpu_slots(workers, ctx.args.cell_threads)
    for slot in zip(cores, _gpu_slots(ctx, workers), strict=True):
        slots.put(slot)
    logger.info("Running %d cells in %d local processes (cores %s).", len(todo), workers, cores)
    with _thread_environment(len(cores[0])), concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=method, initializer=_init_process, initargs=(spec, slots)) as pool:
        futures = {pool.submit(_process_cell, spec, cell): cell for cell in todo}
        try:
            for future in concurrent.futures.as_completed(futures):
                on_done(futures[future], future.result())
        except concurrent.futures.process.BrokenProcessPool as err:
            pool.shutdown(cancel_futures=True)
            raise ExecutorError("A worker process of the ladder died (out of memory, or killed) while it ran cells. "
                                "The cells that finished are cached: rerun the same command to go on, with fewer "
                                "--workers if memory ran out.") from err
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _ray_cell(spec: ContextSpec, cell: Cell, threads: int) -> dict[str, Any]:
    """A Ray task: the worker's context (built once per worker process), then the cell, on ``threads`` threads."""
    torch.set_num_threads(threads)
    return compute_cell(spec.context(), cell)


def _require_ray() -> Any:
    if importlib.util.find_spec("ray") is None:
        raise ExecutorError("executor='ray' needs the ray package, which is not installed. Fix: pip install "
                            "'tlnlp[ray]' (or use --executor local).")
    import ray  # deferred: optional, heavy (the `ray` extra)

    return ray


def _run_ray(ctx: CellContext, spec: ContextSpec, todo: Sequence[Cell],
             on_done: Callable[[Cell, dict[str, Any]], None]) -> None:
    ray = _require_ray()
    started = not ray.is_initialized()
    if started:
        address = ctx.args.ray_address
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 **({} if address else {"num_cpus": len(_usable_cores())}))
    threads = ctx.args.cell_threads or 1
    task = ray.remote(num_cpus=threads, num_gpus=1 if ctx.device.startswith("cuda") else 0, max_retries=0)(_ray_cell)
    try:
        pending = {task.remote(spec, cell, threads): cell for cell in todo}
        logger.info("Submitted %d cells to Ray (%s).", len(todo), ctx.args.ray_address or "started here")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(done[0])
            on_done(cell, ray.get(done[0]))
    finally:
        if started:
            ray.shutdown()


def run_cells(ctx: CellContext, spec: ContextSpec, todo: Sequence[Cell],
              on_done: Callable[[Cell, dict[str, Any]], None]) -> None:
    """Compute ``todo`` with the run's executor, calling ``on_done(cell, record)`` in this process as each ends.

    ``--executor local --workers 1`` (the default) runs the cells here, in order, on this process's threads (or
    ``--cell_threads`` of them).
    """
    if ctx.args.executor == "ray":
        _run_ray(ctx, spec, todo, on_done)
    elif ctx.args.workers > 1 and len(todo) > 1:
        _run_processes(ctx, spec, todo, on_done)
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(ctx.args.cell_threads or threads)
        try:
            for cell in todo:
                on_done(cell, compute_cell(ctx, cell))
        finally:
            torch.set_num_threads(threads)
