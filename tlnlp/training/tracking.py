"""Experiment trackers named by ``--report_to``: their packages checked before any work, and local-first defaults.

``tensorboard`` (tlnlp's default) is a core dependency. ``trackio`` and ``mlflow`` come with the ``tracking`` extra
(``pip install 'tlnlp[tracking]'``); a run that names one whose package is missing stops before any work with a
one-line error that names the extra. Everything else about a tracker is the transformers integration's, set through
its own ``TrainingArguments`` fields and environment variables (``docs/tracking.md``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tlnlp.errors import UserError

__all__ = ["TRACKER_PACKAGES", "TrackerMissingError", "check_trackers", "prepare_tracking", "tracker_names"]

logger = logging.getLogger(__name__)

#: Trackers that come with an extra: ``--report_to`` name -> (module imported, pip package, tlnlp extra).
TRACKER_PACKAGES: dict[str, tuple[str, str, str]] = {
    "trackio": ("trackio", "trackio", "tracking"),
    "mlflow": ("mlflow", "mlflow", "tracking"),
}
#: ``TrainingArguments.project``'s default, which only trackio reads; tlnlp replaces it with the runs' folder.
_TRANSFORMERS_PROJECT = "huggingface"


class TrackerMissingError(UserError, ImportError):
    """``--report_to`` names a tracker whose package is not installed."""


def tracker_names(report_to: str | Sequence[str] | None) -> list[str]:
    """``report_to`` as a list of names, whether given as one string or already a list (``"none"``: empty)."""
    if report_to is None or report_to == "none":
        return []
    return [report_to] if isinstance(report_to, str) else [str(name) for name in report_to]


def check_trackers(report_to: str | Sequence[str] | None) -> None:
    """Refuse a ``report_to`` that names a tracker whose package is not installed, before any work.

    Args:
        report_to: ``TrainingArguments.report_to`` (a name, a list of names, ``"none"`` or None).

    Raises:
        TrackerMissingError: e.g. ``report_to=['trackio'] needs the trackio package: pip install
            'tlnlp[tracking]'``.
    """
    names = tracker_names(report_to)
    for name in names:
        if name not in TRACKER_PACKAGES:
            continue
        module, package, extra = TRACKER_PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise TrackerMissingError(
                f"report_to={names!r} needs the {package} package: pip install 'tlnlp[{extra}]' (or pip install "
                f"{package}), or leave {name!r} out of --report_to (tensorboard needs nothing more)."
            )


def prepare_tracking(train_args: Any) -> None:
    """Check the trackers of a run and give trackio and mlflow local-first defaults; values set by the user stay.

    When ``report_to`` names trackio or mlflow:

    * ``run_name`` (unset): the output folder's name and the start time, e.g. ``movie_minilm-20250101-120000``,
      so each run is told apart and a rerun into the same folder never appends to the earlier run.
    * trackio's ``project`` (left at transformers' ``huggingface``): the name of the folder that holds the output
      folder, e.g. ``classification`` for ``runs/classification/movie_minilm``: the runs of one recipe side by side.
    * trackio's ``trackio_static_space_id`` (unset, and no Space asked for by ``trackio_space_id`` or
      ``$TRACKIO_SPACE_ID``): ``False``, so the logs stay on this machine even when the model is pushed to the Hub
      (transformers would otherwise publish them as a Space). Give it a Space name to publish them.

    Where trackio and mlflow store the runs is theirs to decide (``$TRACKIO_DIR``, ``$MLFLOW_TRACKING_URI``):
    both default to local storage.

    Args:
        train_args: The run's ``TrainingArguments`` (changed in place).

    Raises:
        TrackerMissingError: A tracker's package is not installed (see :func:`check_trackers`).
    """
    names = tracker_names(getattr(train_args, "report_to", None))
    check_trackers(names)
    if not any(name in TRACKER_PACKAGES for name in names):
        return
    out = Path(train_args.output_dir)
    if train_args.run_name is None:
        train_args.run_name = f"{out.name or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    if "trackio" not in names:
        return
    if train_args.project == _TRANSFORMERS_PROJECT:
        train_args.project = out.resolve().parent.name or "tlnlp"
    space_asked = train_args.trackio_space_id or os.environ.get("TRACKIO_SPACE_ID")
    if train_args.trackio_static_space_id is None and not space_asked:
        train_args.trackio_static_space_id = False
    logger.info("trackio: project %r, run %r; view the runs with `trackio show --project %s`.",
                train_args.project, train_args.run_name, train_args.project)
