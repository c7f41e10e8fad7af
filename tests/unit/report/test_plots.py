"""Confusion-matrix and training-curve PNGs: valid files, sane sizes, atomic writes, no pyplot state."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tlnlp.report import plot_confusion_matrix, plot_training_curves
from tlnlp.report import plots as plots_module


def noisy_predictions(num_labels: int, n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_labels, n)
    return y, np.where(rng.random(n) < 0.7, y, rng.integers(0, num_labels, n))


def assert_png(path, min_side=300, max_side=4000):
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert min_side <= width <= max_side and min_side <= height <= max_side, (width, height)
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


@pytest.mark.parametrize("num_labels", [2, 5, 20, 50])
def test_confusion_matrix_png(tmp_path, num_labels):
    y, p = noisy_predictions(num_labels)
    labels = [f"label number {i} with a rather long name" for i in range(num_labels)]
    out = plot_confusion_matrix(y, p, labels, tmp_path / "plots" / "cm.png", title="Test split")
    assert out == tmp_path / "plots" / "cm.png"
    assert_png(out)


def test_confusion_matrix_raw_counts_and_str_path(tmp_path):
    y, p = noisy_predictions(3)
    out = plot_confusion_matrix(y.tolist(), p.tolist(), ["neg", "neu", "pos"], str(tmp_path / "cm.png"),
                                normalize=False)
    assert_png(out)


def capture_figure(monkeypatch):
    captured = {}

    def fake_save(fig, path, dpi=120):
        captured["fig"] = fig
        return path

    monkeypatch.setattr(plots_module, "save_figure", fake_save)
    return captured


def test_confusion_matrix_content(monkeypatch, tmp_path):
    captured = capture_figure(monkeypatch)
    plot_confusion_matrix([0, 0, 1, 2], [0, 1, 1, 2], ["cat", "dog", "bird"], tmp_path / "cm.png",
                          title="Pets")
    fig = captured["fig"]
    ax = fig.axes[0]
    assert "Pets" in ax.get_title() and "accuracy 0.750" in ax.get_title() and "n=4" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "bird"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird"]
    cell_texts = {t.get_text() for t in ax.texts}
    assert "1\n50%" in cell_texts and "1\n100%" in cell_texts  # count and row share
    assert len(fig.axes) == 2  # the matrix and its colour bar


def test_many_labels_drop_cell_text_and_rotate(monkeypatch, tmp_path):
    captured = capture_figure(monkeypatch)
    y, p = noisy_predictions(50)
    labels = [f"category-{i}-" + "x" * 40 for i in range(50)]
    plot_confusion_matrix(y, p, labels, tmp_path / "cm.png")
    ax = captured["fig"].axes[0]
    assert not ax.texts
    ticks = ax.get_xticklabels()
    assert ticks[0].get_rotation() == 90
    assert all(len(t.get_text()) <= 24 for t in ticks)
    assert ticks[0].get_fontsize() >= 6


def test_confusion_matrix_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="labels is empty"):
        plot_confusion_matrix([0], [0], [], tmp_path / "cm.png")
    with pytest.raises(ValueError, match="outside"):
        plot_confusion_matrix([0, 2], [0, 1], ["a", "b"], tmp_path / "cm.png")
    with pytest.raises(ValueError, match="zero rows"):
        plot_confusion_matrix([], [], ["a", "b"], tmp_path / "cm.png")
    assert not list(tmp_path.iterdir())


def test_write_is_atomic(monkeypatch, tmp_path):
    from matplotlib.figure import Figure

    target = tmp_path / "cm.png"
    target.write_bytes(b"previous")

    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_confusion_matrix([0, 1], [0, 1], ["a", "b"], target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["cm.png"]


def log_history():
    history = [{"loss": 2.0 - 0.1 * i, "learning_rate": 1e-4, "epoch": i / 10, "step": 5 * i}
               for i in range(1, 13)]
    history += [{"eval_loss": 1.6 - 0.2 * i, "eval_accuracy": 0.5 + 0.1 * i, "eval_f1_macro": 0.4 + 0.1 * i,
                 "eval_runtime": 0.3, "epoch": i / 2, "step": 20 * i} for i in range(1, 4)]
    history.append({"train_runtime": 12.0, "train_loss": 1.3, "epoch": 1.5, "step": 60})
    return history


def test_training_curves_png(tmp_path):
    out = plot_training_curves(log_history(), tmp_path / "curves.png")
    assert_png(out, min_side=200)


def test_training_curves_picks_metric(monkeypatch, tmp_path):
    captured = capture_figure(monkeypatch)
    plot_training_curves(log_history(), tmp_path / "curves.png")
    metric_ax = captured["fig"].axes[1]
    assert metric_ax.get_ylabel() == "eval_f1_macro"
    assert "0.7000" in metric_ax.get_title()
    plot_training_curves(log_history(), tmp_path / "curves.png", metric="accuracy")
    assert captured["fig"].axes[1].get_ylabel() == "eval_accuracy"
    loss_ax = captured["fig"].axes[0]
    assert {line.get_label() for line in loss_ax.get_lines()} == {"train loss", "eval loss"}


def test_training_curves_without_eval_has_one_panel(monkeypatch, tmp_path):
    captured = capture_figure(monkeypatch)
    plot_training_curves([{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}], tmp_path / "c.png")
    assert len(captured["fig"].axes) == 1


def test_training_curves_errors(tmp_path):
    with pytest.raises(ValueError, match="no 'loss'"):
        plot_training_curves([{"epoch": 1.0}], tmp_path / "c.png")
    with pytest.raises(ValueError, match="eval_bleu"):
        plot_training_curves(log_history(), tmp_path / "c.png", metric="bleu")


def test_no_pyplot_or_backend_change(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from tlnlp.report import plot_confusion_matrix, plot_training_curves\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'\n"
        "plot_confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), ['a', 'b'], "
        f"{str(tmp_path / 'a.png')!r})\n"
        f"plot_training_curves([{{'loss': 1.0, 'step': 1}}], {str(tmp_path / 'b.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
