"""``run_stages``: a chain of fine-tuning stages, each starting from the model of the one before, resumable.

Layout of the chain's ``output_dir``::

    staged_plan.json          every stage's settings (a resumed chain must match them)
    stage1_<name>/            a full run folder per stage (model, results, predictions, card, stage_record.json)
    stage2_<name>/            ... the last stage's folder holds the final model; its card records the whole chain
    baseline_target_only/     with --baseline target_only: the last stage's data trained alone
    hp_search/                with a search of the last stage: the study, trials, plot, best_config.yaml
    staged_results.json       every stage's record, forgetting, the baseline comparison, flat metrics
    staged_summary.md         the chain section of the final card
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers.trainer_utils import get_last_checkpoint

from tlnlp._version import __version__
from tlnlp.config import TrainingArgs
from tlnlp.config.run_folder import close_output_dir, ensure_claimed, write_text_atomic
from tlnlp.hub import push_run_from_args
from tlnlp.methods import reload_run
from tlnlp.models import load_classifier
from tlnlp.runs import write_json
from tlnlp.staged.args import StagedArgs
from tlnlp.staged.card import SECTION_TITLE, replace_section, staged_section
from tlnlp.staged.data import check_rehearsal, mix_rehearsal, same_label_space
from tlnlp.staged.forgetting import compare_with_baseline, measure_forgetting
from tlnlp.staged.heads import stage_model_path
from tlnlp.staged.records import StagedResult, StageRecord, read_record
from tlnlp.staged.resume import PLAN_FILE, RESULTS_FILE, ResumePoint, resolve_resume
from tlnlp.staged.search import search_last_stage
from tlnlp.staged.spec import StageSpec, StageSpecError, build_stage_specs, stage_training_args
from tlnlp.staged.stage import StageJob, train_stage
from tlnlp.tasks import TASKS

__all__ = ["BASELINE_DIR", "RESULTS_FILE", "run_stages"]

logger = logging.getLogger(__name__)

BASELINE_DIR = "baseline_target_only"


@dataclass
class _Chain:
    """What every stage of one chain shares."""

    task: Any
    specs: list[StageSpec]
    datas: list[Any]
    model_args: Any
    staged_args: StagedArgs
    train_args: TrainingArgs
    resume: ResumePoint
    explicit: dict[str, Any]
    callbacks: list[Any] = field(default_factory=list)
    search: Callable[[Mapping[str, Any]], Any] | None = None
    search_folder: str = "hp_search"

    @property
    def out(self) -> Path:
        return Path(self.train_args.output_dir)

    @property
    def is_main(self) -> bool:
        return self.train_args.process_index == 0

    def signature(self, spec: StageSpec) -> dict[str, Any]:
        rehearsal = self.staged_args.rehearsal_samples if spec.index > 1 else 0
        return _jsonable({**spec.signature(self.train_args), "rehearsal_samples": rehearsal,
                          "start_model": str(self.model_args.model_name_or_path)})


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _barrier(train_args: TrainingArgs) -> None:
    """Every process waits here until the main process has written what the next step reads."""
    with train_args.main_process_first(desc="stage handover"):
        pass


def _finished(chain: _Chain, spec: StageSpec | None, folder: Path, signature: dict[str, Any]) -> StageRecord | None:
    """The record of a run that already finished in ``folder`` with these settings, when resuming."""
    if not chain.resume.resuming or (spec is not None and chain.resume.stage == spec.index):
        return None
    record = read_record(folder)
    return record if record is not None and record.settings == signature else None


def _checkpoint(chain: _Chain, spec: StageSpec | None, folder: Path) -> str | None:
    if not chain.resume.resuming:
        return None
    if spec is not None and chain.resume.stage == spec.index:
        return chain.resume.checkpoint
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _section(chain: _Chain, earlier: Sequence[StageRecord], total: int) -> Any:
    def build(pending: StageRecord) -> str:
        return staged_section([*earlier, pending], total=total, start_model=str(chain.model_args.model_name_or_path),
                              version=__version__, rehearsal=chain.staged_args.rehearsal_samples)
    return build


def _search(chain: _Chain, start: Any, fresh: bool) -> Any:
    """The last stage's search (its best values set on its spec), from ``start``: the previous stage's model."""
    spec, data = chain.specs[-1], chain.datas[-1]
    job = StageJob(spec=spec, data=data, source=data, model_args=start, index=spec.index, callbacks=chain.callbacks,
                   train_args=stage_training_args(chain.train_args, spec, chain.out / spec.name, chain.explicit))
    return search_last_stage(chain.search, job, chain.task, chain.out / chain.search_folder, fresh)


def _run_stage(chain: _Chain, i: int, start: Any, earlier: list[StageRecord], allow_skip: bool,
               searched: Any = None) -> tuple[StageRecord, bool]:
    """Run stage ``i`` (or skip it when it finished before with the same settings); returns (record, skipped).

    ``searched``: the outcome of the stage's search (its card section and results go into its folder).
    """
    spec, data, n = chain.specs[i], chain.datas[i], len(chain.specs)
    folder = chain.out / spec.name
    signature = chain.signature(spec)
    done = _finished(chain, spec, folder, signature) if allow_skip else None
    if done is not None:
        logger.info("Stage %d/%d: %s, %s: finished before in %s; skipped.", i + 1, n, data.name, spec.method, folder)
        return done, True
    rows = chain.staged_args.rehearsal_samples if i > 0 else 0
    mixed = mix_rehearsal(data, chain.datas[i - 1], rows, chain.train_args.seed) if rows else data
    resume_from = _checkpoint(chain, spec, folder)
    logger.info("Stage %d/%d: %s, %s%s", i + 1, n, data.name, spec.method,
                f" (resuming from {Path(resume_from).name})" if resume_from else "")
    job = StageJob(spec=spec, data=mixed, source=data, model_args=start, index=spec.index,
                   train_args=stage_training_args(chain.train_args, spec, folder, chain.explicit),
                   resume_from=resume_from, rehearsal_rows=rows, section=_section(chain, earlier, n),
                   callbacks=chain.callbacks, settings=signature,
                   sections=dict(searched.sections) if searched else {},
                   results=dict(searched.results) if searched else {})
    return train_stage(job, chain.task), False


def _run_chain(chain: _Chain) -> list[StageRecord]:
    records: list[StageRecord] = []
    start = chain.model_args
    rerun = False  # once a stage runs, every later stage runs too: it starts from a new model
    for i, spec in enumerate(chain.specs):
        last = i == len(chain.specs) - 1
        searched = _search(chain, start, fresh=rerun) if last and chain.search is not None else None
        record, skipped = _run_stage(chain, i, start, list(records), not rerun, searched)
        rerun = rerun or not skipped
        records.append(record)
        start = dataclasses.replace(chain.model_args, tokenizer_name=None, init_from_scratch=False,
                                    model_name_or_path=stage_model_path(chain.out / spec.name))
        _barrier(chain.train_args)
    return records


def _run_baseline(chain: _Chain) -> StageRecord:
    """The last stage's data trained alone from the chain's starting model, with the last stage's settings."""
    spec, data = chain.specs[-1], chain.datas[-1]
    folder = chain.out / BASELINE_DIR
    signature = {**chain.signature(spec), "baseline": "target_only"}
    done = _finished(chain, None, folder, signature)
    if done is not None:
        logger.info("Target-only baseline: finished before in %s; skipped.", folder)
        return done
    resume_from = _checkpoint(chain, None, folder)
    logger.info("Target-only baseline: %s, %s from %s%s", data.name, spec.method, chain.model_args.model_name_or_path,
                f" (resuming from {Path(resume_from).name})" if resume_from else "")
    job = StageJob(spec=spec, data=data, source=data, model_args=chain.model_args, index=0,
                   train_args=stage_training_args(chain.train_args, spec, folder, chain.explicit),
                   resume_from=resume_from, callbacks=chain.callbacks, settings=signature)
    return train_stage(job, chain.task)


def _final_model(chain: _Chain, records: list[StageRecord]) -> tuple[Any, Any]:
    folder = chain.out / records[-1].name
    loaded = reload_run(folder)  # an adapter run
    if loaded is None:
        args = dataclasses.replace(chain.model_args, model_name_or_path=str(folder), tokenizer_name=None,
                                   init_from_scratch=False)
        loaded = load_classifier(args, labels=list(records[-1].labels), multi_label=chain.datas[-1].multi_label)
    model, tokenizer = loaded
    return model.to(chain.train_args.device), tokenizer


def _forgetting(chain: _Chain, records: list[StageRecord]) -> list[dict[str, Any]]:
    if len(records) < 2:
        return []
    needed = any(same_label_space(d, chain.datas[-1]) for d in chain.datas[:-1])
    final = _final_model(chain, records) if needed else None
    return measure_forgetting(records, chain.datas, final, [s.data_args.max_seq_length for s in chain.specs])


def _write_outputs(chain: _Chain, result: StagedResult) -> None:
    """staged_results.json, the final card's full "Staged transfer" section, staged_summary.md; then the push."""
    final = result.records[-1]
    section = staged_section(result.records, total=len(result.records), start_model=result.start_model,
                             version=__version__, rehearsal=result.rehearsal_samples, result=result)
    write_json(chain.out / RESULTS_FILE, result.to_dict())
    replace_section(result.final_dir / "README.md", SECTION_TITLE, section)
    write_text_atomic(chain.out / "staged_summary.md", f"# {SECTION_TITLE}: {chain.out.name}\n\n{section}\n")
    logger.info("Chain finished: final model (stage %d, %s) in %s", final.index, final.dataset, result.final_dir)
    push_run_from_args(chain.train_args, result.final_dir,
                       hub_model_id=chain.train_args.hub_model_id or chain.out.absolute().name)


def _check_search(staged_args: StagedArgs) -> None:
    if staged_args.rehearsal_samples:
        raise StageSpecError(
            f"rehearsal_samples={staged_args.rehearsal_samples} with a hyperparameter search: the search's "
            "best_config.yaml reruns the last stage alone from the previous stage's model, where no rows of an earlier "
            "stage can be mixed in, so it would not reproduce the best trial. Fix: drop --rehearsal_samples, or drop "
            "--hp_search.")


def run_stages(model_args: Any, method_args: Any, staged_args: StagedArgs, train_args: TrainingArgs, *,
               callbacks: Sequence[Any] | None = None, search: Callable[[Mapping[str, Any]], Any] | None = None,
               search_folder: str = "hp_search") -> StagedResult:
    """Train a chain of stages, each from the model of the one before; measure forgetting and, if asked, the baseline.

    Every stage is checked (keys, values, methods, data, rehearsal) before any training, and the chain's
    ``output_dir`` is guarded like a recipe's (:func:`tlnlp.training.prepare_output_dir`). Each stage logs
    ``Stage i/n: dataset, method`` and writes a full run folder through :func:`tlnlp.runs.finish`. With
    ``--resume_from_checkpoint``, finished stages are skipped and the interrupted stage resumes from its newest
    checkpoint. See the module docstring for the folder layout.

    Args:
        model_args: The first stage's starting model (a model name, a folder, or any run folder).
        method_args: The chain's ``MethodArgs`` (each stage's method and options default to these).
        staged_args: The stages, rehearsal, baseline and shared data settings.
        train_args: The chain's ``TrainingArgs`` (each stage's budget defaults to these).
        callbacks: Extra Trainer callbacks for every stage.
        search: A hyperparameter search of the last stage (``tlnlp.search.search_hook``): the earlier stages run
            first, then the search, then the last stage with the best values (see :mod:`tlnlp.staged.search`).
            Rerunning the same command after an interruption continues the chain and its search.
        search_folder: The search's folder inside ``output_dir``.

    Returns:
        The :class:`StagedResult` (main process: with forgetting and the baseline comparison).

    Raises:
        tlnlp.staged.StageSpecError: A stage or the rehearsal settings written wrongly.
        tlnlp.training.OutputDirError: The output folder is not safe to write into, or holds no chain to resume.
    """
    task = TASKS.get("classification")
    if search is not None:
        _check_search(staged_args)
    specs = build_stage_specs(staged_args.stages, method_args, staged_args.data_defaults())
    explicit = {k: v for o in (model_args, method_args, staged_args, train_args)
                for k, v in getattr(o, "_tlnlp_explicit", {}).items()}
    start = stage_model_path(model_args.model_name_or_path)  # an adapter run folder: its merged/ model
    if start != model_args.model_name_or_path:
        model_args = dataclasses.replace(model_args, model_name_or_path=start)
    chain = _Chain(task=task, specs=specs, datas=[], model_args=model_args, staged_args=staged_args,
                   train_args=train_args, resume=ResumePoint(), explicit=explicit, callbacks=list(callbacks or []),
                   search=search, search_folder=search_folder)
    plan = {"start_model": str(model_args.model_name_or_path), "stages": [chain.signature(s) for s in specs]}
    chain.resume = resolve_resume(train_args, plan, [s.name for s in specs], search_folder if search else None)
    chain.datas = [task.load_data(spec.data_args) for spec in specs]
    check_rehearsal(chain.datas, staged_args.rehearsal_samples)
    _barrier(train_args)  # every process has checked the folder before the main process writes into it
    if chain.is_main:
        ensure_claimed(chain.out)  # locked and marked unfinished before its first file
        chain.out.mkdir(parents=True, exist_ok=True)
        write_json(chain.out / PLAN_FILE, plan)
    records = _run_chain(chain)
    baseline = _run_baseline(chain) if staged_args.baseline == "target_only" else None
    _barrier(train_args)
    result = StagedResult(output_dir=str(chain.out), start_model=str(model_args.model_name_or_path), records=records,
                          rehearsal_samples=staged_args.rehearsal_samples, version=__version__)
    if not chain.is_main:
        return result
    result.forgetting = _forgetting(chain, records)
    result.baseline = compare_with_baseline(records[-1], baseline) if baseline is not None else None
    _write_outputs(chain, result)
    close_output_dir(chain.out)  # every file of the chain is written
    return result
