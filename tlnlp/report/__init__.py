"""Run reports: confusion matrices and training curves as PNG files."""

from tlnlp.report.plots import plot_confusion_matrix, plot_training_curves, save_figure
from tlnlp.report.schedule_plot import plot_layer_rates

__all__ = ["plot_confusion_matrix", "plot_layer_rates", "plot_training_curves", "save_figure"]
