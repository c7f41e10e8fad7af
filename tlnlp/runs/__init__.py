"""Runs: what a run hands over when it ends (:class:`RunContext`) and the one pipeline that writes its outputs.

Every recipe (classification, question answering, ULMFiT, LM adaptation, zero-shot, few-shot, entailment training)
ends with :func:`finish`, so every run folder holds the same kinds of files; :func:`run_lm_adaptation` is the LM
stage that two recipes share, and :func:`run_embedding_method` the run of a method that fits a head on sentence
embeddings without the Trainer.
"""

from tlnlp.runs.context import FittedRun, RunContext, Scores, TrainedRun
from tlnlp.runs.embedding import EmbeddingRun, check_embedding_data, run_embedding_method
from tlnlp.runs.files import environment_info, format_metrics_table, reproduce_command, write_json
from tlnlp.runs.finish import finish
from tlnlp.runs.lm_adaptation import LmRunOptions, run_lm_adaptation
from tlnlp.runs.resources import peak_rss_mb, resource_metrics, resources_section, weights_size_mb
from tlnlp.runs.saved_eval import SavedModelError, evaluate_saved_classifier
from tlnlp.runs.saved_qa_eval import evaluate_saved_qa, saved_qa_settings

__all__ = [
    "EmbeddingRun",
    "FittedRun",
    "LmRunOptions",
    "RunContext",
    "SavedModelError",
    "Scores",
    "TrainedRun",
    "check_embedding_data",
    "environment_info",
    "evaluate_saved_classifier",
    "evaluate_saved_qa",
    "finish",
    "format_metrics_table",
    "peak_rss_mb",
    "reproduce_command",
    "resource_metrics",
    "resources_section",
    "run_embedding_method",
    "run_lm_adaptation",
    "saved_qa_settings",
    "weights_size_mb",
    "write_json",
]
