"""``--method setfit``: contrastive fine-tuning of a sentence-transformer on pairs of labelled rows, then a head."""

from tlnlp.methods.setfit.method import SetFit
from tlnlp.methods.setfit.options import SAMPLING_STRATEGIES, SetFitOptions, check_setfit_options

__all__ = ["SAMPLING_STRATEGIES", "SetFit", "SetFitOptions", "check_setfit_options"]
