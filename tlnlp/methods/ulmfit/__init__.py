"""ULMFiT: the ``ulmfit`` method and its options (discriminative rates, schedules, gradual unfreezing, rate plot).

Importing this package registers the method. Its parts:

* :mod:`~tlnlp.methods.ulmfit.options`: the flags and their presets (``transformer``, ``paper``);
* :mod:`~tlnlp.methods.ulmfit.groups`: one optimizer group per layer group;
* :mod:`~tlnlp.methods.ulmfit.schedules`: slanted triangular, discriminative scales, thaw steps, ``LayerwiseLR``;
* :mod:`~tlnlp.methods.ulmfit.unfreezing`: frozen groups that stay bit-identical under several processes;
* :mod:`~tlnlp.methods.ulmfit.plot`: ``learning_rates.png``;
* :mod:`~tlnlp.methods.ulmfit.method`: the hooks.
"""

from tlnlp.methods.ulmfit.groups import describe_param_groups, layerwise_param_groups, merge_block_groups
from tlnlp.methods.ulmfit.method import Ulmfit
from tlnlp.methods.ulmfit.options import ULMFIT_PRESETS, UlmfitOptions, UlmfitPreset, UlmfitSettings
from tlnlp.methods.ulmfit.plot import LR_PLOT_NAME, LayerRatesCallback, plot_layer_rates
from tlnlp.methods.ulmfit.schedules import LayerwiseLR, slanted_triangular
from tlnlp.methods.ulmfit.unfreezing import FrozenAwareAdamW, zero_frozen_grads

__all__ = [
    "LR_PLOT_NAME",
    "ULMFIT_PRESETS",
    "FrozenAwareAdamW",
    "LayerRatesCallback",
    "LayerwiseLR",
    "Ulmfit",
    "UlmfitOptions",
    "UlmfitPreset",
    "UlmfitSettings",
    "describe_param_groups",
    "layerwise_param_groups",
    "merge_block_groups",
    "plot_layer_rates",
    "slanted_triangular",
    "zero_frozen_grads",
]
