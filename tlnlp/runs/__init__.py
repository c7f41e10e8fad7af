"""Runs: what a run hands over when it ends (:class:`RunContext`) and the one pipeline that writes its outputs.

Every recipe (classification, question answering, ULMFiT, LM adaptation, zero-shot, few-shot, entailment training)
ends with :func:`finish`, so every run folder holds the same kinds of files; :func:`run_lm_adaptation` is the LM
stage that two recipes share.
"""

from tlnlp.runs.context import RunContext, Scores, TrainedRun
from tlnlp.runs.files import environment_info, format_metrics_table, reproduce_command, write_json
from tlnlp.runs.finish import finish
from tlnlp.runs.lm_adaptation import LmRunOptions, run_lm_adaptation
from tlnlp.runs.resources import peak_rss_mb, resource_metrics, resources_section, weights_size_mb

__all__ = [
    "LmRunOptions",
    "RunContext",
    "Scores",
    "TrainedRun",
    "environment_info",
    "finish",
    "format_metrics_table",
    "peak_rss_mb",
    "reproduce_command",
    "resource_metrics",
    "resources_section",
    "run_lm_adaptation",
    "weights_size_mb",
    "write_json",
]
