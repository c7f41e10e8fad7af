"""Run reports: confusion matrices and training curves as PNG files."""

from tlnlp.report.plots import plot_confusion_matrix, plot_evaluation, plot_training_curves, save_figure

__all__ = ["plot_confusion_matrix", "plot_evaluation", "plot_training_curves", "save_figure"]
