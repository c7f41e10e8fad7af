"""Zero-shot baselines: what a model gives with no labelled data at all.

* NLI zero-shot (:func:`score_nli`): any NLI cross-encoder (a Hub model such as ``facebook/bart-large-mnli``, a
  local folder, or one trained here) scores every (text, hypothesis) pair in length-sorted batches; the scores
  equal those of ``transformers.pipeline("zero-shot-classification")``.
* Label-entailment training (:func:`build_entailment_pairs`, :func:`run_entailment_training`,
  :func:`load_or_train_entailment_model`): labelled classification data becomes entailment pairs (Yin et al.
  2019), so an entailment model can be trained offline from any encoder.
* Embedding similarity (:func:`score_embeddings`): sentence embeddings (sentence-transformers; pooled as the
  model's files say, mean pooling for a plain transformers model) of texts against label descriptions.
* Scoring knobs (:class:`ScoringOptions`): batch size, truncation, multi-label, entailment index, temperature and
  the progress bar, one frozen value shared by every scorer.
* Specs (:data:`SPECS`, :func:`resolve_spec`): hypothesis templates and label descriptions as versioned data.

Example:
    >>> from tlnlp.zeroshot import load_encoder, score_embeddings
    >>> model, tokenizer = load_encoder("bundled:minilm")
    >>> score_embeddings(model, tokenizer, ["Shares fell 5% today."], ["business", "sports"]).argmax(1)
    array([0])
"""

from tlnlp.zeroshot.args import ENTAILMENT_LABELS, EntailmentArgs, ZeroShotArgs, ZeroShotError, zero_shot_errors
from tlnlp.zeroshot.batching import resolve_device
from tlnlp.zeroshot.embeddings import embed_texts, load_encoder, mean_pool, score_embeddings
from tlnlp.zeroshot.entailment import build_entailment_pairs, entailment_task_data, is_entailment_model
from tlnlp.zeroshot.nli import DEFAULT_TEMPLATE, entailment_id, load_nli_model, nli_logits, score_nli
from tlnlp.zeroshot.options import ScoringOptions
from tlnlp.zeroshot.prior import label_prior
from tlnlp.zeroshot.scoring import (
    evaluate_zero_shot,
    load_zero_shot_model,
    similarity_probabilities,
    zero_shot_probabilities,
)
from tlnlp.zeroshot.specs import SPECS, ZeroShotSpec, load_spec_file, resolve_spec, spec_for_dataset
from tlnlp.zeroshot.training import evaluate_unseen_tasks, load_or_train_entailment_model, run_entailment_training

__all__ = [
    "label_prior",
    "DEFAULT_TEMPLATE",
    "ENTAILMENT_LABELS",
    "SPECS",
    "EntailmentArgs",
    "ScoringOptions",
    "ZeroShotArgs",
    "ZeroShotError",
    "ZeroShotSpec",
    "build_entailment_pairs",
    "embed_texts",
    "entailment_id",
    "entailment_task_data",
    "evaluate_unseen_tasks",
    "evaluate_zero_shot",
    "is_entailment_model",
    "load_encoder",
    "load_nli_model",
    "load_or_train_entailment_model",
    "load_spec_file",
    "load_zero_shot_model",
    "mean_pool",
    "nli_logits",
    "resolve_device",
    "resolve_spec",
    "run_entailment_training",
    "score_embeddings",
    "score_nli",
    "similarity_probabilities",
    "spec_for_dataset",
    "zero_shot_errors",
    "zero_shot_probabilities",
]
