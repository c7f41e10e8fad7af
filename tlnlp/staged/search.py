"""A hyperparameter search of the chain's last (target) stage, run through a hook the recipe passes.

The earlier stages run once, with their own settings, before the search; every trial then trains the last stage from
the previous stage's saved model, exactly as the stage itself would (its data, head, method and budget), and is
scored on the stage's validation split. The best values land in the last stage's settings (its training overrides
and method options), so the stage, its record and the target-only baseline train with them.

The search's ``best_config.yaml`` is a one-stage chain: the last stage, with the best values written into its own
keys, starting from the previous stage's folder (the model every trial started from). It reproduces the best trial
exactly, without retraining the earlier stages. The search itself comes from ``tlnlp.search.search_hook`` (this
layer does not import it): the hook takes the parts named in :func:`search_last_stage` and returns an outcome with
``values``, ``results`` and ``sections``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from transformers import set_seed

from tlnlp.staged.heads import load_stage_model
from tlnlp.staged.spec import StageSpec, stage_keys
from tlnlp.staged.stage import StageJob

__all__ = ["best_stage_config", "search_last_stage"]

logger = logging.getLogger(__name__)


def best_stage_config(spec: StageSpec, start: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings of ``best_config.yaml`` over the chain's: a one-stage chain that reruns the best trial.

    The stage is the last one as written, with each best value that a stage may set (a training key such as
    ``learning_rate``, or a method option) written into it; a ``TrainingArguments`` flag a stage cannot set goes to
    the top level, which in a one-stage chain is that stage's alone. It starts from the previous stage's model.

    Args:
        spec: The last stage.
        start: ``ModelArgs`` of the model the trials started from.
        values: The best trial's values.

    Returns:
        The settings that replace the chain's.
    """
    own = set(stage_keys())
    item = {**spec.raw, **{name: value for name, value in values.items() if name in own}}
    top = {name: value for name, value in values.items() if name not in own}
    start_model = {key: getattr(start, key) for key in ("model_name_or_path", "tokenizer_name", "init_from_scratch")}
    return {**start_model, "stages": [item], "baseline": "none", "rehearsal_samples": 0, **top}


def _drop_stale_study(search_dir: Path, job: StageJob) -> None:
    if search_dir.is_dir() and job.train_args.process_index == 0:
        logger.warning("%s holds a search whose trials started from an earlier model of the stage before; it is "
                       "removed and the search starts again.", search_dir)
        shutil.rmtree(search_dir)


def search_last_stage(search: Callable[[Mapping[str, Any]], Any], job: StageJob, task: Any, search_dir: Path,
                      fresh: bool) -> Any:
    """Search the last stage's settings; set the best values on its spec (training overrides, method options).

    Args:
        search: The hook (``tlnlp.search.search_hook``), called with the :class:`tlnlp.search.SearchSetup` parts
            ``task``, ``data``, ``model_args``, ``method_args``, ``train_args``, ``tokenizer``, ``datasets``,
            ``compute_metrics``, ``load_model``, ``trainer_kwargs``, ``search_dir`` and ``best_overrides``.
        job: The last stage's run: its spec, data, start model (the previous stage's) and training arguments.
        task: The classification task.
        search_dir: The chain's search folder.
        fresh: Whether an earlier stage was trained by this run: a stored study's trials started from another
            model then, so it is removed.

    Returns:
        The search's outcome (``values``, ``results``, ``sections``).
    """
    spec, data, args = job.spec, job.data, job.train_args
    if fresh and job.index > 1:
        _drop_stale_study(search_dir, job)
    labels = list(data.labels)

    def load_model() -> Any:  # each trial: the previous stage's model, with the head the stage's labels call for
        return load_stage_model(job.model_args, labels, data.multi_label, spec.new_head)[0]

    set_seed(args.seed)
    tokenizer = load_stage_model(job.model_args, labels, data.multi_label, spec.new_head)[1]
    with args.main_process_first(desc="tokenize"):
        tokenized = task.tokenize(data, tokenizer, spec.data_args)
    outcome = search({"task": task, "data": data, "model_args": job.model_args, "method_args": spec.method_args,
                      "train_args": args, "tokenizer": tokenizer, "datasets": tokenized,
                      "compute_metrics": task.compute_metrics(data, spec.data_args), "load_model": load_model,
                      "trainer_kwargs": {"callbacks": list(job.callbacks)}, "search_dir": search_dir,
                      "best_overrides": lambda values: best_stage_config(spec, job.model_args, values)})
    training = {f.name for f in dataclasses.fields(args)}
    spec.training.update({name: getattr(args, name) for name in outcome.values if name in training})
    return outcome
