"""The card's "Staged transfer" section (the chain, forgetting, the baseline) and the printed summary of a chain."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlnlp.config.run_folder import write_text_atomic
from tlnlp.staged.records import StagedResult, StageRecord

__all__ = ["SECTION_TITLE", "format_summary", "replace_section", "staged_section"]

SECTION_TITLE = "Staged transfer"


def _public(name: str) -> str:
    """A model name safe to show: a local path becomes its last component."""
    looks_local = name.startswith(("/", "~", ".")) or os.path.exists(name)
    return Path(name).name if looks_local else name


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"


def _labels(labels: Sequence[str]) -> str:
    shown = ", ".join(labels[:4]) + (", ..." if len(labels) > 4 else "")
    return f"{len(labels)} ({shown})"


def _budget(record: StageRecord) -> str:
    if record.max_steps and record.max_steps > 0:
        return f"{record.max_steps} steps"
    return f"{record.epochs:g}"


def _row(record: StageRecord, pending: bool) -> list[str]:
    dataset = record.dataset + (f" v{record.data_version}" if record.data_version else "")
    rows = f"{record.train_rows}" + (f" (+{record.rehearsal_rows} rehearsal)" if record.rehearsal_rows else "")
    results = (["see Results", "see Results"] if pending else
               [_number(record.metrics.get("eval_accuracy")), _number(record.metrics.get("test_accuracy"))])
    return [str(record.index), dataset, f"`{record.fingerprint[:12]}`", _labels(record.labels), f"`{record.method}`",
            _budget(record), f"{record.learning_rate:g}", rows, record.head, *results]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _chain_table(records: Sequence[StageRecord], pending: bool) -> str:
    header = ("stage", "dataset", "fingerprint", "labels", "method", "epochs", "learning rate", "train rows", "head",
              "validation accuracy", "test accuracy")
    rows = [_row(record, pending and i == len(records) - 1) for i, record in enumerate(records)]
    prints = "; ".join(f"stage {r.index} `{r.fingerprint}`" for r in records)
    return (_table(header, rows) + "\n\nData fingerprints (sha256 over every split's rows and the label names, "
            f"before rehearsal rows): {prints}.")


def _forgetting_text(entries: Sequence[dict[str, Any]]) -> str:
    rows = []
    for e in entries:
        if e["measurable"]:
            rows.append([str(e["stage"]), e["dataset"], e["split"], _number(e["accuracy_after_stage"]),
                         _number(e["accuracy_after_chain"]), f"{e['forgetting']:+.4f}"])
        else:
            rows.append([str(e["stage"]), e["dataset"], "—", "—", "—", e["reason"]])
    header = ("stage", "dataset", "split", "accuracy after its stage", "after the chain", "forgetting")
    return ("The final model scored again on each earlier stage's split (forgetting = accuracy after its own stage "
            "minus after the whole chain; positive means forgotten).\n\n" + _table(header, rows))


def _baseline_text(baseline: dict[str, Any], dataset: str, start: str) -> str:
    verdict = ("**Negative transfer**: the chain scores below the target-only baseline, so the earlier stages "
               "hurt." if baseline["negative_transfer"] else "No negative transfer: the chain scores at least as "
               "well as the target-only baseline.")
    return (f"{dataset} trained alone from `{start}` (same method, epochs, learning rate and seed; folder "
            f"`{baseline['folder']}`): {baseline['split']} accuracy {baseline['baseline_accuracy']:.4f}, against "
            f"{baseline['chained_accuracy']:.4f} for the chain ({baseline['gain']:+.4f}). {verdict}")


def staged_section(records: Sequence[StageRecord], *, total: int, start_model: str, version: str,
                   rehearsal: int = 0, result: StagedResult | None = None) -> str:
    """The markdown of the card's "Staged transfer" section.

    Args:
        records: The stages up to this card's stage; the last one is this card's (its results are the card's).
        total: Stages in the chain.
        start_model: The first stage's starting model.
        version: tlnlp's version.
        rehearsal: ``--rehearsal_samples``.
        result: The finished chain (the final card): adds forgetting and the baseline comparison.

    Returns:
        Markdown (no heading).
    """
    current = records[-1]
    parts = [f"This model is stage {current.index} of a {total}-stage staged (intermediate-task) transfer chain, "
             f"trained with tlnlp {version} from `{_public(start_model)}`. Each stage fine-tunes the previous "
             "stage's model on its own data; the encoder always carries over, and the classification head too "
             "when a stage's labels are the previous stage's (head `kept` or `reordered`), else it is `new`.",
             _chain_table(records, pending=result is None)]
    if rehearsal:
        parts.append(f"Rehearsal: each stage after the first also trained on {rehearsal} seeded rows of the "
                     "previous stage's training set (counted in train rows).")
    if result is not None and result.forgetting:
        parts.append("### Forgetting\n\n" + _forgetting_text(result.forgetting))
    if result is not None and result.baseline is not None:
        parts.append("### Target-only baseline\n\n" + _baseline_text(result.baseline, current.dataset,
                                                                   _public(start_model)))
    parts.append("The launch command under Reproduce reruns the whole chain; this folder's `run_config.yaml` "
                 "reruns this stage alone with recipes/classification.py from the previous stage's folder"
                 + (" (without the rehearsal rows)." if rehearsal else "."))
    return "\n\n".join(parts)


def replace_section(path: str | Path, title: str, text: str) -> None:
    """Replace (or append) the ``## title`` section of a markdown card, up to the next ``## `` heading."""
    file = Path(path)
    lines = file.read_text(encoding="utf-8").rstrip("\n").split("\n")
    heading = f"## {title}"
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), len(lines))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    block = [heading, "", text.strip()] + ([""] if end < len(lines) else [])
    if start == len(lines):
        block = ["", *block]
    write_text_atomic(file, "\n".join(lines[:start] + block + lines[end:]) + "\n")


def format_summary(result: StagedResult) -> str:
    """A plain-text summary of a finished chain, for printing."""
    lines = [f"Staged transfer from {_public(result.start_model)}: {len(result.records)} stages"]
    for r in result.records:
        lines.append(f"  stage {r.index}  {r.dataset:<28} {r.method:<16} head={r.head:<9} "
                     f"eval_accuracy={_number(r.metrics.get('eval_accuracy'))}  "
                     f"test_accuracy={_number(r.metrics.get('test_accuracy'))}  ({r.seconds:.0f} s)")
    for e in result.forgetting:
        lines.append(f"  forgetting, stage {e['stage']} ({e['dataset']}): " + (
            f"{e['split']} accuracy {e['accuracy_after_stage']:.4f} -> {e['accuracy_after_chain']:.4f} "
            f"({-e['forgetting']:+.4f})" if e["measurable"] else e["reason"]))
    if result.baseline is not None:
        b = result.baseline
        lines.append(f"  target-only baseline: {b['split']} accuracy {b['baseline_accuracy']:.4f} vs chain "
                     f"{b['chained_accuracy']:.4f} ({b['gain']:+.4f})"
                     + ("  NEGATIVE TRANSFER" if b["negative_transfer"] else ""))
    lines.append(f"Final model: {result.final_dir}")
    return "\n".join(lines)
