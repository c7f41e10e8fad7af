"""Evaluation-only question-answering runs: score a trained QA run's folder on validation and test, training nothing.

What ``--do_eval`` / ``--do_predict`` without ``--do_train`` run in the question-answering recipe. The saved run is
loaded through :func:`tlnlp.inference.load_pipeline` (full models and adapters alike) and scored exactly as the
training run's final evaluation scored it: the same windows, the Trainer's prediction loop with the same padding,
the same n-best post-processing and SQuAD metrics (:func:`tlnlp.tasks.qa.evaluate.evaluate_qa_run`), so
``eval_results.json`` / ``test_results.json``, ``predictions.json`` / ``test_predictions.json`` (with their n-best
lists and null odds) hold the training run's numbers and answers. ``evaluate``'s QA evaluator
(:func:`tlnlp.tasks.qa.pipeline_eval.evaluate_qa_pipeline`) is not used here: its SQuAD v2 ``best_*`` figures are
thresholds on a no-answer probability, not on the null-score difference the training run reports, and it gives
no loss.

The window and answer settings (``max_seq_length``, ``doc_stride``, ``pad_to_max_length``, ``n_best_size``,
``max_answer_length``, ``version_2_with_negative``, ``null_score_diff_threshold``,
``null_threshold_from_validation``) are the run's, from its ``run_config.yaml``, unless given on the command line
(:func:`saved_qa_settings`); the folder gets ``run_config.yaml`` with the settings used and ``environment.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import datasets
import yaml
from transformers import DataCollatorWithPadding
from transformers.trainer_utils import IntervalStrategy

from tlnlp.config import write_run_config
from tlnlp.config.run_folder import close_output_dir
from tlnlp.inference import load_pipeline
from tlnlp.runs.context import RunContext, TrainedRun
from tlnlp.runs.files import environment_info, write_json
from tlnlp.runs.saved_eval import SavedModelError
from tlnlp.tasks import TASKS
from tlnlp.tasks.qa.evaluate import evaluate_qa_run
from tlnlp.tasks.qa.pipeline import RUN_SETTINGS, QuestionAnsweringPipeline
from tlnlp.training import TlnlpTrainer, pad_multiple

__all__ = ["evaluate_saved_qa", "saved_qa_settings"]

logger = logging.getLogger(__name__)

#: Settings taken from the evaluated run's ``run_config.yaml`` unless given explicitly.
SAVED_SETTINGS = (*RUN_SETTINGS, "pad_to_max_length", "null_threshold_from_validation")
_SPLITS = (("evaluate", "validation", "eval"), ("predict", "test", "test"))


def _explicit(*objs: Any) -> set[str]:
    """The settings given on the command line or in the config file (recorded by :func:`tlnlp.config.parse_args`)."""
    return {name for obj in objs for name in getattr(obj, "_tlnlp_explicit", {})}


def _saved_results(folder: Path) -> dict[str, Any]:
    path = folder / "all_results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _predict_only_threshold(qa_args: Any, folder: Path) -> Any:
    """Predict-only with ``null_threshold_from_validation``: the run's validation threshold, as its test answers had."""
    best = _saved_results(folder).get("eval_best_f1_thresh")
    if best is None:
        logger.warning("null_threshold_from_validation: the run in %s records no eval_best_f1_thresh, and this run "
                       "scores no validation split; test answers use null_score_diff_threshold=%s.", folder,
                       qa_args.null_score_diff_threshold)
        return dataclasses.replace(qa_args, null_threshold_from_validation=False)
    logger.info("Test answers use the run's best validation null threshold %.4f.", best)
    return dataclasses.replace(qa_args, null_score_diff_threshold=float(best), null_threshold_from_validation=False)


def saved_qa_settings(model_args: Any, data_args: Any, qa_args: Any, stages: Any) -> tuple[Any, Any]:
    """The window and answer settings of the run in ``model_args.model_name_or_path``, unless given explicitly.

    Call it before loading the data (``version_2_with_negative`` decides whether unanswerable questions load).

    Args:
        model_args: ``model_name_or_path`` is the trained run's folder (or a Hub id: its settings stay as given).
        data_args: The parsed data arguments (``max_seq_length``).
        qa_args: The parsed :class:`tlnlp.config.QAArgs`.
        stages: :class:`tlnlp.training.RunStages`; predict-only with ``null_threshold_from_validation`` answers the
            test questions with the run's recorded ``eval_best_f1_thresh``.

    Returns:
        ``(data_args, qa_args)``, copies with the run's settings where the command line gave none.
    """
    folder = Path(str(model_args.model_name_or_path))
    path = folder / "run_config.yaml"
    saved = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
    given = _explicit(model_args, data_args, qa_args)
    taken = {k: saved[k] for k in SAVED_SETTINGS if k in saved and k not in given}
    current = {**vars(qa_args), "max_seq_length": data_args.max_seq_length}
    changed = {k: v for k, v in taken.items() if current.get(k) != v}
    if changed:
        logger.info("Settings of the run in %s (not given on the command line): %s", folder, changed)
    if "max_seq_length" in taken:
        data_args = dataclasses.replace(data_args, max_seq_length=taken.pop("max_seq_length"))
    qa_args = dataclasses.replace(qa_args, **taken)
    if qa_args.null_threshold_from_validation and not stages.evaluate:
        qa_args = _predict_only_threshold(qa_args, folder)
    return data_args, qa_args


def _requested(data: Any, stages: Any) -> Any:
    """``data`` with only the validation and/or test split asked for (nothing else is tokenised).

    Raises:
        SavedModelError: A requested split is missing.
    """
    kept = {}
    for stage, split, prefix in _SPLITS:
        if not getattr(stages, stage):
            continue
        if split not in data.splits:
            raise SavedModelError(f"do_{'eval' if prefix == 'eval' else 'predict'}=True, but the data has no {split} "
                                  f"split (it has: {', '.join(data.splits)}). Give --{split}_file, or a dataset "
                                  f"with a {split} split.")
        kept[split] = data.splits[split]
    return dataclasses.replace(data, splits=datasets.DatasetDict(kept))


def _setting(config_objects: tuple[Any, ...], name: str) -> Any:
    return next(obj for obj in config_objects if hasattr(obj, name))


def _loaded_pipeline(source: Any) -> QuestionAnsweringPipeline:
    pipe = load_pipeline(source)
    if not isinstance(pipe, QuestionAnsweringPipeline):
        raise SavedModelError(f"model_name_or_path={str(source)!r} holds a {getattr(pipe, 'task', type(pipe))} "
                              "model, not a question-answering run. Give the output_dir of a question_answering run.")
    return pipe


def evaluate_saved_qa(model_args: Any, data: Any, train_args: Any, stages: Any,
                      config_objects: tuple[Any, ...]) -> dict[str, float]:
    """Score the QA run in ``model_args.model_name_or_path`` on the requested splits, as its training run did.

    Every process of a multi-process launch must call it (prediction is collective); only the main one writes.

    Args:
        model_args: ``model_name_or_path`` names the trained run.
        data: The loaded :class:`~tlnlp.tasks.qa.data.QAData` (loaded with :func:`saved_qa_settings`' arguments).
        train_args: ``output_dir`` receives the results; evaluation batch size, precision and seed as in training.
        stages: :class:`tlnlp.training.RunStages` with ``evaluate`` and/or ``predict`` set.
        config_objects: The parsed arguments (with :func:`saved_qa_settings`' data and QA arguments), written to
            ``run_config.yaml``.

    Returns:
        ``eval_*`` and/or ``test_*`` metrics, the keys of the training run's ``eval_results.json`` /
        ``test_results.json``.

    Raises:
        SavedModelError: A requested split is missing, or the folder holds no question-answering model.
    """
    out = Path(train_args.output_dir)
    task = TASKS.get("question-answering")
    data_args, qa_args = _setting(config_objects, "max_seq_length"), _setting(config_objects, "doc_stride")
    data = _requested(data, stages)
    pipe = _loaded_pipeline(model_args.model_name_or_path)
    with train_args.main_process_first(desc="tokenize"):
        windows = task.tokenize(data, pipe.tokenizer, data_args, qa_args=qa_args)
    args = copy.copy(train_args)
    args.eval_strategy = IntervalStrategy.NO  # no training, so no evaluation during it
    collator = DataCollatorWithPadding(pipe.tokenizer, pad_to_multiple_of=pad_multiple(train_args))  # as in training
    trainer = TlnlpTrainer(model=pipe.model, args=args, processing_class=pipe.tokenizer, data_collator=collator)
    # the final scoring of a training run reads only the Trainer and the windows: nothing is trained or saved
    ctx = RunContext(output_dir=out, recipe="question_answering", task=task, data=data,
                     base_model=str(model_args.model_name_or_path), config_objects=config_objects,
                     trained=TrainedRun(trainer=trainer, train_result=None, datasets=windows, prepared=None))
    metrics = dict(evaluate_qa_run(ctx, qa_args))
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "all_results.json", metrics)  # this run's numbers only (save_metrics merges old ones)
        write_run_config(out, *config_objects, recipe="question_answering")
        write_json(out / "environment.json", environment_info(int(train_args.seed), data.fingerprint, {
            "data_name": data.name, "data_version": getattr(data, "version", None),
            "evaluated_model": str(model_args.model_name_or_path), **task.environment(ctx)}))
        logger.info("Evaluated %s; results in %s", model_args.model_name_or_path, out)
        close_output_dir(out)  # every file is written (the Trainer above locked and marked the folder)
    return metrics
