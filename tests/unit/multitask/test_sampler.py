"""The multi-task sampler: exact shares per epoch, one task per block, a seeded order, the same task on 2 processes."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import BatchSampler

from tlnlp.multitask import MultiTaskSampler, block_counts, task_probabilities, task_steps

SIZES = [16, 64, 48]  # rows per task; offsets 0, 16, 80


def _task_of(index: int) -> int:
    return 0 if index < 16 else 1 if index < 80 else 2


def test_probabilities_of_each_strategy():
    assert task_probabilities([16, 1000, 1000], "proportional") == pytest.approx([16 / 2016, 1000 / 2016, 1000 / 2016])
    root = [4.0, math.sqrt(1000), math.sqrt(1000)]
    assert task_probabilities([16, 1000, 1000], "temperature", 2.0) == pytest.approx([r / sum(root) for r in root])
    assert task_probabilities([16, 1000, 1000], "temperature", 1.0) == pytest.approx([16 / 2016, 1000 / 2016,
                                                                                       1000 / 2016])
    # a large T moves towards equal shares; round-robin gives them exactly
    assert task_probabilities([16, 1000, 1000], "temperature", 1000.0)[0] == pytest.approx(0.33, abs=0.01)
    assert task_probabilities([16, 1000, 1000], "round_robin") == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize("sampling, temperature, message", [
    ("uniform", 1.0, "sampling='uniform' is not valid; choose one of: proportional, temperature, round_robin"),
    ("temperature", 0.0, "temperature=0.0 must be > 0"),
    ("temperature", -2.0, "temperature=-2.0 must be > 0"),
])
def test_bad_sampling_settings_are_refused(sampling, temperature, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        task_probabilities(SIZES, sampling, temperature)


def test_block_counts_are_the_largest_remainder_split():
    assert block_counts([0.125, 0.5, 0.375], 16) == [2, 8, 6]
    assert block_counts([0.2113, 0.4226, 0.3661], 16) == [3, 7, 6]  # 3.38, 6.76, 5.86: the two largest remainders
    assert block_counts([1 / 3] * 3, 16) == [6, 5, 5]  # ties go to the first task


@pytest.mark.parametrize("sampling, expected", [
    ("proportional", {0: 2, 1: 8, 2: 6}),  # 16/128, 64/128, 48/128 of 16 blocks
    ("temperature", {0: 3, 1: 7, 2: 6}),  # sqrt: 4, 8, 6.93 -> 0.211, 0.423, 0.366 of 16 blocks
    ("round_robin", {0: 6, 1: 5, 2: 5}),
])
def test_every_epoch_gives_each_task_its_exact_share_of_blocks(sampling, expected):
    sampler = MultiTaskSampler(SIZES, block_size=8, sampling=sampling, temperature=2.0, seed=3)
    assert sampler.blocks_per_epoch == 16 and len(sampler) == 128
    for epoch in range(4):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == 128
        blocks = [indices[i:i + 8] for i in range(0, 128, 8)]
        tasks = [{_task_of(i) for i in block} for block in blocks]
        assert all(len(t) == 1 for t in tasks), "every block holds rows of one task"
        assert Counter(t.pop() for t in tasks) == expected
        assert [next(iter({_task_of(i) for i in b})) for b in blocks] == sampler.block_tasks(epoch)
    if sampling == "round_robin":
        assert sampler.block_tasks(0)[:6] == [0, 1, 2, 0, 1, 2]


def test_rows_of_a_task_are_a_permutation_before_any_repeats_and_the_order_is_seeded():
    sampler = MultiTaskSampler(SIZES, block_size=8, sampling="round_robin", seed=0)
    rows = [i for i in sampler if _task_of(i) == 0]  # 6 blocks of 8 = 48 rows of a 16-row task: three passes
    assert len(rows) == 48
    for start in (0, 16, 32):
        assert sorted(rows[start:start + 16]) == list(range(16))
    assert rows[:16] != rows[16:32]  # a new permutation for each pass
    again = MultiTaskSampler(SIZES, block_size=8, sampling="temperature", seed=7)
    first = MultiTaskSampler(SIZES, block_size=8, sampling="temperature", seed=7)
    assert list(first) == list(again)  # same seed and epoch: the same stream (every process draws the same)
    again.set_epoch(1)
    assert list(again) != list(first)  # a new epoch: a new order
    other = MultiTaskSampler(SIZES, block_size=8, sampling="temperature", seed=8)
    assert other.block_tasks(0) != first.block_tasks(0)


def test_statistics_over_many_epochs_follow_the_probabilities():
    sizes = [10, 300, 1000]
    sampler = MultiTaskSampler(sizes, block_size=4, sampling="temperature", temperature=3.0, seed=1)
    counts = Counter(task for epoch in range(20) for task in sampler.block_tasks(epoch))
    total = sum(counts.values())
    expected = task_probabilities(sizes, "temperature", 3.0)
    for task, p in enumerate(expected):
        assert counts[task] / total == pytest.approx(p, abs=0.002)


def test_task_steps_counts_the_blocks_trained_across_epochs():
    sampler = MultiTaskSampler(SIZES, block_size=8, sampling="temperature", temperature=2.0, seed=3)
    assert task_steps(sampler, 32) == [6, 14, 12]  # two whole epochs
    partial = task_steps(sampler, 20)
    assert sum(partial) == 20 and partial == [a + b for a, b in zip(
        [3, 7, 6], [Counter(sampler.block_tasks(1)[:4])[t] for t in range(3)], strict=True)]


def test_two_process_shards_see_the_same_task_at_every_step():
    """accelerate hands batch k to process k % 2: with block = per-device batch x 2, both halves of a block."""
    sampler = MultiTaskSampler(SIZES, block_size=8, sampling="temperature", seed=5)
    batches = BatchSampler(sampler, batch_size=4, drop_last=False)
    shards = [list(BatchSamplerShard(batches, num_processes=2, process_index=p, split_batches=False))
              for p in range(2)]
    assert len(shards[0]) == len(shards[1]) == 16
    tasks = sampler.block_tasks(0)
    for step, (mine, theirs) in enumerate(zip(*shards, strict=True)):
        assert {_task_of(i) for i in mine} == {_task_of(i) for i in theirs} == {tasks[step]}
    ordered = [i for step in zip(*shards, strict=True) for batch in step for i in batch]
    assert ordered == list(sampler)  # together the two processes train on the one-process stream, step by step
