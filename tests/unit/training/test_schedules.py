"""ULMFiT schedules: slanted triangular values against the paper's formula, discriminative scales, thaw steps."""

from __future__ import annotations

import io
import math

import pytest
import torch

from tlnlp.methods.ulmfit.schedules import (
    LayerwiseLR,
    discriminative_scales,
    slanted_triangular,
    thaw_steps,
)


def paper_stlr(t: int, T: int, cut_frac: float, ratio: float) -> float:
    """Howard & Ruder (2018), equation 3, written out independently of the library."""
    cut = math.floor(T * cut_frac)
    p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
    return (1 + p * (ratio - 1)) / ratio


@pytest.mark.parametrize("T,cut_frac,ratio", [(1000, 0.1, 32.0), (250, 0.2, 10.0), (40, 0.1, 32.0)])
def test_slanted_triangular_equals_paper_formula_at_every_step(T, cut_frac, ratio):
    for t in range(T + 1):
        expected = paper_stlr(t, T, cut_frac, ratio)
        assert slanted_triangular(t, T, cut_frac, ratio) == pytest.approx(expected, rel=1e-12), t


@pytest.mark.parametrize("T", [18, 37])
def test_slanted_triangular_decays_over_the_whole_run_when_cut_is_rounded(T):
    # T * cut_frac is not whole: the paper's denominator cut * (1/cut_frac - 1) is shorter than T - cut, so its
    # formula would reach the floor early and stay there; tlnlp decays until the last step instead
    cut = math.floor(T * 0.1)
    values = [slanted_triangular(t, T) for t in range(T + 1)]
    assert values[cut] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values[cut:], values[cut + 1:], strict=False))
    assert values[T] == pytest.approx(1 / 32) and values[T - 1] > 1 / 32


def test_slanted_triangular_chosen_steps():
    # T=1000, cut_frac=0.1, ratio=32: cut=100; start at 1/32, peak at the cut, half-way down at step 550
    assert slanted_triangular(0, 1000) == pytest.approx(1 / 32)
    assert slanted_triangular(50, 1000) == pytest.approx(16.5 / 32)
    assert slanted_triangular(100, 1000) == pytest.approx(1.0)
    assert slanted_triangular(550, 1000) == pytest.approx(16.5 / 32)
    assert slanted_triangular(1000, 1000) == pytest.approx(1 / 32)
    # too few steps for a rise: start at the peak and decay
    assert slanted_triangular(0, 5) == pytest.approx(1.0)
    assert slanted_triangular(4, 5) < slanted_triangular(1, 5) < 1.0


def test_discriminative_scales_divide_by_the_factor_per_group():
    scales = discriminative_scales(4, 2.6)
    assert scales == pytest.approx([2.6 ** -3, 2.6 ** -2, 2.6 ** -1, 1.0])
    assert all(scales[i] * 2.6 == pytest.approx(scales[i + 1]) for i in range(3))
    assert discriminative_scales(3, 1.0) == [1.0, 1.0, 1.0]


def test_thaw_steps_per_mode():
    orders = [3, 2, 1, 0]  # embeddings, block_0, block_1, head
    assert thaw_steps(orders, "epoch", steps_per_epoch=10) == [30, 20, 10, 0]
    assert thaw_steps(orders, "steps", every_steps=4) == [12, 8, 4, 0]
    assert thaw_steps(orders, "off") == [0, 0, 0, 0]
    assert thaw_steps(orders, "off", head_warmup_steps=7) == [7, 7, 7, 0]
    assert thaw_steps(orders, "steps", every_steps=4, head_warmup_steps=6) == [12, 8, 6, 0]
    with pytest.raises(ValueError, match="positive period"):
        thaw_steps(orders, "steps")
    with pytest.raises(ValueError, match="gradual_unfreezing='weekly'"):
        thaw_steps(orders, "weekly")


def test_thaw_steps_by_fraction_of_the_run():
    orders = [3, 2, 1, 0]  # embeddings, block_0, block_1, head
    # every group trains by half of 120 steps: one more every 20 steps
    assert thaw_steps(orders, "fraction", total_steps=120, fraction=0.5) == [60, 40, 20, 0]
    assert thaw_steps(orders, "fraction", total_steps=56, fraction=0.1) == [5, 3, 1, 0]  # floor(k * 5.6 / 3)
    assert thaw_steps([7, 6, 5, 4, 3, 2, 1, 0], "fraction", total_steps=1000, fraction=0.1) == [
        100, 85, 71, 57, 42, 28, 14, 0]
    assert thaw_steps(orders, "fraction", total_steps=10, fraction=1.0) == [10, 6, 3, 0]
    assert thaw_steps(orders, "fraction", total_steps=2, fraction=0.1) == [0, 0, 0, 0]  # too short to space
    assert thaw_steps([0, 0], "fraction", total_steps=50, fraction=0.1) == [0, 0]  # nothing below the head
    assert thaw_steps(orders, "fraction", total_steps=120, fraction=0.5, head_warmup_steps=30) == [60, 40, 30, 0]
    # split param groups (decay / no decay) share their layer group's order and step
    assert thaw_steps([3, 3, 0, 0], "fraction", total_steps=30, fraction=0.5) == [15, 15, 0, 0]
    with pytest.raises(ValueError, match="fraction"):
        thaw_steps(orders, "fraction", total_steps=100)
    with pytest.raises(ValueError, match="total_steps=None"):
        thaw_steps(orders, "fraction", fraction=0.5)


def _optimizer(lrs):
    params = [torch.nn.Parameter(torch.ones(2)) for _ in lrs]
    return torch.optim.AdamW([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])


def test_layerwise_lr_masks_frozen_groups_and_flags_them():
    opt = _optimizer([0.1, 1.0])
    sched = LayerwiseLR(opt, lambda step: 1.0 / (1 + step), [3, 0])
    seen = []
    for _ in range(5):
        seen.append(([g["lr"] for g in opt.param_groups], [g["frozen"] for g in opt.param_groups]))
        opt.step()
        sched.step()
    assert [s[1] for s in seen] == [[True, False]] * 3 + [[False, False]] * 2
    assert seen[2][0] == [0.0, pytest.approx(1 / 3)]
    assert seen[3][0] == [pytest.approx(0.1 / 4), pytest.approx(1 / 4)]
    assert sched.rates_at(3) == [pytest.approx(0.1 / 4), pytest.approx(1 / 4)]


def test_layerwise_lr_state_reloads_safely_and_resumes_the_same_rates():
    opt = _optimizer([0.5, 1.0])
    sched = LayerwiseLR(opt, [lambda s: 1.0, lambda s: 0.5], [2, 0])
    for _ in range(3):
        opt.step()
        sched.step()
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain data only, as the Trainer loads it
    fresh_opt = _optimizer([0.5, 1.0])
    fresh = LayerwiseLR(fresh_opt, [lambda s: 1.0, lambda s: 0.5], [2, 0])
    fresh.load_state_dict(state)
    assert fresh.last_epoch == 3 and fresh.thaw_steps == [2, 0]
    fresh.step()
    sched.step()
    assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in opt.param_groups]


def test_layerwise_lr_checks_group_counts():
    with pytest.raises(ValueError, match="2 optimizer param groups"):
        LayerwiseLR(_optimizer([1.0, 1.0]), lambda s: 1.0, [0])
