"""Mixing tasks into batches: each block of rows (one global batch) holds one task, drawn by the sampling strategy.

The training rows of every task lie one after the other in one dataset
(:class:`~tlnlp.multitask.data.MultiTaskDataset`). :class:`MultiTaskSampler` yields their indices in *blocks* of
``block_size`` rows, every block from one task. With ``block_size`` = per-device batch x number of processes, the
Trainer's data loader cuts a block into one batch per process (accelerate hands consecutive batches to the processes
in turn), so every optimisation step, on every process, trains one task and the task id routes the batch to its head.

An epoch holds as many rows as all tasks' training rows together (rounded up to whole blocks). How many of its
blocks each task gets:

* ``proportional``: p_i = n_i / sum n (big tasks dominate; a task of 16 rows among two of 1,000 is rarely seen);
* ``temperature``: p_i ∝ n_i^(1/T) (T=1 is proportional; larger T moves towards equal shares);
* ``round_robin``: the tasks in turn (equal shares whatever their sizes).

Block counts are exact per epoch (largest remainder of ``blocks x p_i``), and the order of the blocks is shuffled
with a generator seeded by ``(seed, epoch)``: every process draws the same order, a resumed run the same as the
uninterrupted one. Within a task, rows come from seeded permutations of its rows, a new one whenever the task's
rows run out (a small task is cycled through several times per epoch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["SAMPLING", "MultiTaskSampler", "block_counts", "task_probabilities", "task_steps"]

#: Values of ``--sampling``.
SAMPLING = ("proportional", "temperature", "round_robin")


def task_probabilities(sizes: Sequence[int], sampling: str, temperature: float = 1.0) -> list[float]:
    """The share of batches each task gets.

    Args:
        sizes: Training rows per task.
        sampling: One of :data:`SAMPLING`.
        temperature: T of ``temperature`` sampling (> 0).

    Returns:
        One probability per task, summing to 1.

    Raises:
        ValueError: Unknown sampling, T <= 0, or a task without rows.
    """
    if sampling not in SAMPLING:
        raise ValueError(f"sampling={sampling!r} is not valid; choose one of: {', '.join(SAMPLING)}.")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0.")
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"every task needs training rows; got sizes {list(sizes)}.")
    if sampling == "round_robin":
        return [1.0 / len(sizes)] * len(sizes)
    power = 1.0 if sampling == "proportional" else 1.0 / temperature
    weights = np.asarray(sizes, dtype=np.float64) ** power
    return [float(w) for w in weights / weights.sum()]


def block_counts(probabilities: Sequence[float], blocks: int) -> list[int]:
    """``blocks`` split between the tasks in proportion to ``probabilities`` (largest remainder, ties to the first)."""
    exact = np.asarray(probabilities, dtype=np.float64) * blocks
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: blocks - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


class MultiTaskSampler(Sampler[int]):
    """Indices into the concatenated training rows of every task, in blocks of one task each.

    Args:
        sizes: Training rows per task, in the order they lie in the dataset.
        block_size: Rows per block: per-device batch x processes (one optimisation step's batch per process).
        sampling: One of :data:`SAMPLING`.
        temperature: T of ``temperature`` sampling.
        seed: Seed of the block order and of the rows within each task (every process must use the same).
    """

    def __init__(self, sizes: Sequence[int], block_size: int, sampling: str = "temperature",
                 temperature: float = 2.0, seed: int = 42) -> None:
        if block_size < 1:
            raise ValueError(f"block_size={block_size!r} must be a positive number of rows.")
        self.sizes = [int(n) for n in sizes]
        self.block_size = int(block_size)
        self.sampling = sampling
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.probabilities = task_probabilities(self.sizes, sampling, self.temperature)
        self.offsets = [int(x) for x in np.cumsum([0, *self.sizes[:-1]])]
        self.epoch = 0

    @property
    def blocks_per_epoch(self) -> int:
        """Blocks of one epoch: all tasks' rows together, rounded up to whole blocks."""
        return max(1, math.ceil(sum(self.sizes) / self.block_size))

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of epoch ``epoch`` next (the Trainer calls it before every epoch)."""
        self.epoch = int(epoch)

    def _rng(self, epoch: int, *stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, *stream])

    def block_tasks(self, epoch: int | None = None) -> list[int]:
        """The task of every block of an epoch, in order."""
        epoch = self.epoch if epoch is None else epoch
        blocks, tasks = self.blocks_per_epoch, len(self.sizes)
        if self.sampling == "round_robin":
            return [i % tasks for i in range(blocks)]
        order = [task for task, count in enumerate(block_counts(self.probabilities, blocks)) for _ in range(count)]
        return [order[i] for i in self._rng(epoch).permutation(len(order))]

    def _rows(self, task: int, epoch: int) -> Iterator[int]:
        rng = self._rng(epoch, 1 + task)
        while True:
            yield from (self.offsets[task] + int(i) for i in rng.permutation(self.sizes[task]))

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        streams = {task: self._rows(task, epoch) for task in range(len(self.sizes))}
        for task in self.block_tasks(epoch):
            stream = streams[task]
            for _ in range(self.block_size):
                yield next(stream)

    def __len__(self) -> int:
        return self.blocks_per_epoch * self.block_size


def task_steps(sampler: MultiTaskSampler, blocks_trained: int) -> list[int]:
    """How many blocks each task got in the first ``blocks_trained`` blocks of training (epoch after epoch).

    Args:
        sampler: The run's sampler (its seed and settings decide the order).
        blocks_trained: Blocks consumed: optimisation steps x gradient-accumulation steps.

    Returns:
        Blocks per task.
    """
    counts = [0] * len(sampler.sizes)
    epoch, left = 0, int(blocks_trained)
    while left > 0:
        tasks = sampler.block_tasks(epoch)[:left]
        for task in tasks:
            counts[task] += 1
        left -= len(tasks)
        epoch += 1
    return counts
