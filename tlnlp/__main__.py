"""Command line: ``tlnlp {train,compare,predict,push,assets} ...`` (also ``python -m tlnlp ...``).

``train`` runs a recipe that ships with tlnlp (``tlnlp train classification --config movie_minilm``), alone or
under ``accelerate launch -m tlnlp train ...``; see :mod:`tlnlp.api`.

``predict`` runs a saved run through the task that owns its model (:mod:`tlnlp.tasks`): texts for a
classification run, JSON objects ``{"question": ..., "context": ...}`` for a question-answering run; an input
the task cannot take ends the command with one ``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tlnlp.tasks import TASKS, TaskInputError

__all__ = ["main"]


def _assets(args: argparse.Namespace) -> int:
    from tlnlp.assets import INSTALL_COMMAND, describe_assets  # deferred: a subcommand imports only what it runs

    rows = describe_assets(verify=not args.no_verify)
    width = max(len(r["name"]) for r in rows)
    for row in rows:
        where = row.get("path") or row["package"]
        print(f"{row['name']:<{width}}  {row['kind']:<11}  {row['status']:<7}  {where}")
    missing = [r for r in rows if r["status"] != "ok"]
    if args.with_corpora:
        from tlnlp.data.bundled import describe_corpora  # deferred: as above

        print()
        for corpus in describe_corpora():
            print(f"bundled:{corpus['name']:<18} v{corpus['version']}  {corpus['description']}  "
                  f"[{corpus['license']}]")
    if missing:
        print(f"\n{len(missing)} asset(s) missing or corrupt. Install them with:\n    {INSTALL_COMMAND}")
        return 1
    print("\nAll bundled assets are installed and verified.")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import transformers  # deferred: as in _assets (`assets` runs without torch)

    from tlnlp.inference import load_task_pipeline  # deferred: as above

    transformers.utils.logging.disable_progress_bar()  # a CLI prints predictions, not loading bars
    lines = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        task, pipe = load_task_pipeline(args.output_dir)
        inputs = [task.parse_input(line) for line in lines]
        records = task.predict(pipe, inputs, args.top_k)
    except (TaskInputError, OSError) as err:  # a bad input, or no model where the run should be
        print(f"error: {err}", file=sys.stderr)
        return 2
    for record in records:
        print(json.dumps(record, ensure_ascii=False) if args.json else task.format_prediction(record))
    return 0


def _input_help() -> str:
    kinds = "; ".join(task.input_help for task in map(TASKS.get, TASKS.names()) if task.input_help)
    return f"Inputs, one per argument (default: one per line on stdin): {kinds}."


def _push(args: argparse.Namespace) -> int:
    from tlnlp.hub import HubTokenError, push_run  # deferred: as in _assets

    try:
        result = push_run(args.output_dir, args.repo_id, private=True if args.private else None,
                          base_model=args.base_model, commit_message=args.commit_message, revision=args.revision)
    except (HubTokenError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    kind = f"adapter for {result.base_model}" if result.adapter else "model"
    print(f"Pushed {len(result.files)} files of {args.output_dir} ({kind}) to {result.url}")
    print(f"Load it with: tlnlp.load_pipeline({result.repo_id!r})")
    return 0


def _compare(argv: Sequence[str]) -> int:
    from tlnlp.compare.cli import compare_command  # deferred: as in _assets

    return compare_command(argv)


def _train(argv: Sequence[str]) -> int:
    from tlnlp.api import run_command  # deferred: as in _assets

    return run_command(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tlnlp`` and the ``tlnlp`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _train(argv[1:])  # the recipe's own parser, as for compare below
    if argv[:1] == ["compare"]:
        return _compare(argv[1:])  # the recipe's own parser: --config YAML plus every flag (and their --help)
    parser = argparse.ArgumentParser(prog="tlnlp", allow_abbrev=False,
                                     description="tlnlp command line tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="Run a recipe: `tlnlp train <recipe> --config FILE_OR_SHIPPED_NAME [flags]`; "
                                 "`tlnlp train` lists the recipes and their shipped configs.")
    p_assets = sub.add_parser("assets", help="List the bundled offline models and corpora, and what is missing.")
    p_assets.add_argument("--no_verify", action="store_true", help="Skip the sha256 checks.")
    p_assets.add_argument("--with_corpora", action="store_true", help="Also describe each bundled corpus.")
    p_assets.set_defaults(func=_assets)
    p_pred = sub.add_parser("predict", help="Predict with a trained run's output folder: labels for texts, or "
                                           "answers to questions about contexts.")
    p_pred.add_argument("output_dir", help="Output folder of a classification or question-answering run.")
    p_pred.add_argument("texts", nargs="*", help=_input_help())
    p_pred.add_argument("--top_k", type=int, default=1, help="How many labels (or answers) to show per input.")
    p_pred.add_argument("--json", action="store_true", help="Print one JSON object per input.")
    p_pred.set_defaults(func=_predict)
    p_push = sub.add_parser("push", help="Push a finished run's output folder to the Hugging Face Hub (token from "
                                         "HF_TOKEN or `hf auth login`).")
    p_push.add_argument("output_dir", help="Output folder of a finished run (a model or an adapter).")
    p_push.add_argument("repo_id", help="Target repo: namespace/name, or name for your own namespace.")
    p_push.add_argument("--private", action="store_true", help="Create the repo private.")
    p_push.add_argument("--base_model", default=None,
                        help="Adapters only: the base model's Hub id, when the run's base was a local folder.")
    p_push.add_argument("--commit_message", default=None, help="Commit summary.")
    p_push.add_argument("--revision", default=None, help="Branch to push to (default: main).")
    p_push.set_defaults(func=_push)
    sub.add_parser("compare", help="The transfer ladder: every strategy on the same data, label budgets and seeds "
                                   "(flags as recipes/compare.py; --config YAML).")
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
