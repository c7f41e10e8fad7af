"""Hyperparameter search on the training recipes: ``--hp_search optuna|ray`` over a space of flags.

The search runs ``Trainer.hyperparameter_search`` with a ``model_init`` that rebuilds the model through the method
hooks for each trial (:mod:`~tlnlp.search.trainer`), over a space read from YAML or built in per method
(:mod:`~tlnlp.search.space`), optimising the validation metric named by ``--metric_for_best_model``. optuna keeps
its study in the run's folder, so an interrupted search continues (:mod:`~tlnlp.search.backends`). The trials table,
a plot and the best trial's config go to ``<output_dir>/hp_search/`` (:mod:`~tlnlp.search.outputs`), and the
recipe trains its final model with the best values (:mod:`~tlnlp.search.runner`).
"""

from tlnlp.search.args import BACKENDS, HpSearchArgs
from tlnlp.search.backends import STUDY_NAME, SearchBackendMissingError, TrialRecord, study_storage
from tlnlp.search.runner import (
    SEARCH_FOLDER,
    SearchOutcome,
    SearchSetup,
    check_search,
    objective_of,
    prepare_search_output_dir,
    refuse_search,
    run_hp_search,
    search_hook,
    search_in_progress,
)
from tlnlp.search.space import HpSearchError, Param, RecipeOptions, SearchSpace, default_space, load_space

__all__ = [
    "BACKENDS",
    "SEARCH_FOLDER",
    "STUDY_NAME",
    "HpSearchArgs",
    "HpSearchError",
    "Param",
    "RecipeOptions",
    "SearchBackendMissingError",
    "SearchOutcome",
    "SearchSetup",
    "SearchSpace",
    "TrialRecord",
    "check_search",
    "default_space",
    "load_space",
    "objective_of",
    "prepare_search_output_dir",
    "refuse_search",
    "run_hp_search",
    "search_hook",
    "search_in_progress",
    "study_storage",
]
