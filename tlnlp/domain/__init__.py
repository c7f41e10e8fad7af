"""Unsupervised domain adaptation: DANN (Ganin et al. 2016) with the Trainer, from a labelled source to unlabelled text.

=================  ==================================================================================================
module             what it holds
=================  ==================================================================================================
``args``           :class:`DomainArgs`: the target (``--target_dataset``, ``--target_text_file``...), the adversary, λ
``adversary``      gradient reversal, the domain classifier, the λ schedule, the captured head input, DANN's loss
``batches``        target texts tokenised and paired with source rows; the collator that mixes them in every batch
``trainer``        :class:`DomainAdversarialTrainer`: the loss, the domain classifier's optimizer, logs, checkpoints
``distance``       the proxy A-distance (scikit-learn) and the representations it is measured on
``target``         loading the target: training texts, held-out texts, a labelled target's test and validation splits
``search``         :class:`DomainSearch`: a hyperparameter search scored on the target's labelled validation split
``report``         the results file, the card's "Domain adaptation" section and the printed summary
``runner``         :func:`run_domain_adaptation`
=================  ==================================================================================================
"""

from tlnlp.domain.adversary import (
    IGNORE_INDEX,
    SOURCE,
    TARGET,
    Adversary,
    DomainClassifier,
    GradientReversal,
    HeadInput,
    dann_lambda,
    dann_loss,
    grad_reverse,
    head_module_name,
)
from tlnlp.domain.args import DOMAIN_LR_MULTIPLIER, MIN_A_DISTANCE_ROWS, DomainArgs
from tlnlp.domain.batches import PAIR_COLUMNS, TARGET_PREFIX, DomainMixCollator, pair_with_target, tokenize_texts
from tlnlp.domain.distance import ADistance, encode_representations, proxy_a_distance
from tlnlp.domain.report import RESULTS_FILE, SECTION_TITLE, DomainReport, domain_section, format_summary
from tlnlp.domain.runner import (
    TARGET_PREDICTIONS,
    DomainAdaptationError,
    DomainAdaptationResult,
    run_domain_adaptation,
)
from tlnlp.domain.search import SEARCH_METRIC, SEARCH_RANGES, SEARCHABLE, DomainSearch, search_refusal
from tlnlp.domain.target import TargetData, check_source, load_target
from tlnlp.domain.trainer import HEAD_FILE, LOG_KEYS, TARGET_EVAL_PREFIX, CheckpointError, DomainAdversarialTrainer

__all__ = [
    "DOMAIN_LR_MULTIPLIER",
    "HEAD_FILE",
    "IGNORE_INDEX",
    "LOG_KEYS",
    "MIN_A_DISTANCE_ROWS",
    "PAIR_COLUMNS",
    "RESULTS_FILE",
    "SEARCHABLE",
    "SEARCH_METRIC",
    "SEARCH_RANGES",
    "SECTION_TITLE",
    "SOURCE",
    "TARGET",
    "TARGET_EVAL_PREFIX",
    "TARGET_PREDICTIONS",
    "TARGET_PREFIX",
    "ADistance",
    "Adversary",
    "CheckpointError",
    "DomainAdaptationError",
    "DomainAdaptationResult",
    "DomainAdversarialTrainer",
    "DomainArgs",
    "DomainClassifier",
    "DomainMixCollator",
    "DomainReport",
    "DomainSearch",
    "GradientReversal",
    "HeadInput",
    "TargetData",
    "check_source",
    "dann_lambda",
    "dann_loss",
    "domain_section",
    "encode_representations",
    "format_summary",
    "grad_reverse",
    "head_module_name",
    "load_target",
    "pair_with_target",
    "proxy_a_distance",
    "run_domain_adaptation",
    "search_refusal",
    "tokenize_texts",
]
