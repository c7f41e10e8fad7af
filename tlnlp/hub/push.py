"""Push a finished run's output folder to the Hugging Face Hub, as a model repo or an adapter repo.

Everything goes through :mod:`huggingface_hub` (``HfApi.create_repo`` then ``HfApi.upload_folder``). The token
comes from the caller, ``HF_TOKEN`` or the saved login (``hf auth login``); it is passed to the client and never
written anywhere, and a push is refused if any file about to be uploaded contains it.

What is uploaded: the folder's files except checkpoints (``checkpoint-*``), pickles (``*.bin``, ``*.pt``,
``*.pth``, ``*.pkl``), temporary and lock files, and subfolders that hold a model of their own (``merged/``,
``lm_adaptation/``), which can be pushed as repos of their own. A folder that holds an unfinished run (its marker,
:data:`tlnlp.config.run_folder.MARKER`) is refused.

An ensemble's folder (``ensemble.json``, ``--ensemble_seeds``) holds no weights of its own: it is pushed with its
members (each member's folder filtered as a run's folder is), so ``tlnlp.load_pipeline(repo_id)`` downloads the
members and soft-votes as it does on the local folder.

An adapter folder (``adapter_config.json``) is pushed as an adapter repo: its ``adapter_config.json`` and card
name the base model by its Hub id (a ``bundled:`` base is mapped to the Hub id of the same weights), so
``PeftModel.from_pretrained`` and the Hub's "adapter of" link work for anyone. The local files are left as
they are; only the uploaded copies carry the Hub id.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.utils import filter_repo_objects

from tlnlp._version import __version__
from tlnlp.config.hub_token import HubTokenError, require_token
from tlnlp.config.run_folder import ENSEMBLE_MANIFEST, MARKER, check_finished
from tlnlp.hub.card import hub_base_model
from tlnlp.tasks import DEFAULT_TASK, TASKS, task_for_pipeline_tag

__all__ = ["HubTokenError", "PushResult", "push_run", "push_run_from_args", "require_token"]

logger = logging.getLogger(__name__)

#: Never uploaded: training checkpoints, pickled files (unsafe to load), partial writes, locks, private files.
IGNORE_PATTERNS = ["checkpoint-*", "*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.tmp", "*.lock",
                   MARKER, "_*", ".git/*", ".cache/*", "**/.ipynb_checkpoints/*"]
#: Stale files removed from the repo by the final push (the Trainer's intermediate pushes upload its pickled
#: arguments).
DELETE_PATTERNS = ["training_args.bin", "pytorch_model.bin", "adapter_model.bin"]
_SCAN_LIMIT_BYTES = 20_000_000  # weights are not scanned for the token; every text-sized file is
_PEFT_TAG = "peft"


@dataclass(frozen=True)
class PushResult:
    """Where a run was pushed.

    Attributes:
        repo_id: The repository (``namespace/name``).
        url: The repository's address.
        commit_url: The address of the commit that uploaded the folder.
        adapter: Whether it was pushed as an adapter repo.
        base_model: The base model's Hub id recorded for an adapter, else None.
        files: The uploaded paths, relative to the repo root.
    """

    repo_id: str
    url: str
    commit_url: str
    adapter: bool
    base_model: str | None
    files: tuple[str, ...]


def _run_config(folder: Path) -> dict[str, Any]:
    path = folder / "run_config.yaml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _adapter_base(folder: Path, adapter_config: dict[str, Any], base_model: str | None) -> str:
    """The Hub id of an adapter's base model, or an error saying how to name it."""
    if base_model is not None:
        if not (hub_id := hub_base_model(base_model)):
            raise ValueError(f"base_model={base_model!r} is not a Hub model id; give it as ORG/NAME.")
        return hub_id
    for candidate in (_run_config(folder).get("model_name_or_path"), adapter_config.get("base_model_name_or_path")):
        if candidate and (hub_id := hub_base_model(str(candidate))):
            return hub_id
    raise ValueError(
        f"{folder} holds an adapter whose base model ({adapter_config.get('base_model_name_or_path')!r}) is a "
        "local folder with no Hub id, so nobody could load the pushed adapter. Name the base model's Hub id "
        "(python -m tlnlp push ... --base_model ORG/NAME, or push_run(..., base_model=...)), or push a merged "
        "full model instead.")


def _nested_models(folder: Path) -> list[str]:
    """Subfolders that hold a model of their own (``merged/``, ULMFiT's ``lm_adaptation/``): repos of their own.

    The module folders of a sentence-transformers model (``1_Pooling/``...) are part of the model, not others.
    """
    modules = folder / "modules.json"
    parts = {m.get("path") for m in json.loads(modules.read_text(encoding="utf-8"))} if modules.is_file() else set()
    return sorted(sub.name for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith("checkpoint-")
                  and sub.name not in parts
                  and any((sub / name).is_file() for name in ("config.json", "adapter_config.json")))


def _files_to_push(folder: Path, skip: Iterable[str] = ()) -> list[str]:
    """The folder's files to upload (relative paths), less :data:`IGNORE_PATTERNS`, nested models and ``skip``."""
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    nested = _nested_models(folder)
    for name in nested:
        logger.info("Not pushing %s/%s (a model of its own); push it separately with `python -m tlnlp push "
                    "%s/%s REPO_ID`.", folder, name, folder, name)
    ignore = [*IGNORE_PATTERNS, *(f"{n}/*" for n in nested), *(f"{s}/*" for s in skip)]
    return list(filter_repo_objects(found, ignore_patterns=ignore))


def _model_folders(folder: Path) -> list[str]:
    """The folders (relative, ``""`` for the run's own) that hold the models to push: the run, or its members.

    Raises:
        FileNotFoundError: A folder (the run, or a member an ensemble lists) holds no saved model.
        UnfinishedRunError: A member holds an unfinished run.
    """
    manifest = folder / ENSEMBLE_MANIFEST
    members = json.loads(manifest.read_text(encoding="utf-8"))["members"] if manifest.is_file() else [""]
    for member in members:
        path = folder / member
        if member:
            if not path.is_dir():
                raise FileNotFoundError(f"{folder} is an ensemble whose member {member} is missing; push the "
                                        "ensemble's folder as its run left it, members/ included.")
            check_finished(path, "pushing it")
        if not (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds no saved model (no config.json or adapter_config.json): give "
                                    "the output_dir of a finished training run (zero- and few-shot runs save no "
                                    "model).")
    return members


def _plan(folder: Path, members: list[str], base_model: str | None) -> tuple[list[str], dict[str, str], str | None]:
    """What to upload: the files, the files whose uploaded text differs (adapter configs) and an adapter's base.

    An adapter's ``adapter_config.json`` names its base model by Hub id in the uploaded copy; in an ensemble each
    adapter member's does. ``members`` are :func:`_model_folders`'.
    """
    # the members' top folder (members/) is left out whole: only the members the manifest lists go up
    files = _files_to_push(folder, skip=sorted({m.split("/")[0] for m in members if m}))
    replaced: dict[str, str] = {}
    hub_base = None
    for member in members:
        prefix = f"{member}/" if member else ""
        if member:
            files += [prefix + name for name in _files_to_push(folder / member)]
        adapter_path = folder / member / "adapter_config.json"
        if adapter_path.is_file():
            adapter_config = json.loads(adapter_path.read_text(encoding="utf-8"))
            hub_base = _adapter_base(folder / member, adapter_config, base_model)
            replaced[f"{prefix}adapter_config.json"] = json.dumps(
                {**adapter_config, "base_model_name_or_path": hub_base}, indent=2, sort_keys=True) + "\n"
    return files, replaced, hub_base


def _check_no_secret(folder: Path, files: Iterable[str], secret: str) -> None:
    needle = secret.encode()
    for relpath in files:
        path = folder / relpath
        if path.stat().st_size <= _SCAN_LIMIT_BYTES and needle in path.read_bytes():
            raise HubTokenError(f"{path} contains your Hugging Face token; refusing to upload it. Remove the "
                                "token from that file (and revoke it if it was shared), then push again.")


def _usage_section(repo_id: str, adapter: bool, base_model: str | None, pipeline_tag: str | None,
                   ensemble: bool = False) -> str:
    """How to load the pushed repo: through the task that owns the card's pipeline tag, else plain transformers."""
    tag = pipeline_tag or TASKS.get(DEFAULT_TASK).pipeline_tag
    task = task_for_pipeline_tag(tag)
    if task is None or task.usage_example is None:  # e.g. an LM-adapted backbone
        return "\n".join(["```python", "from transformers import pipeline", "",
                          f'pipe = pipeline("{tag}", model="{repo_id}")', "```"])
    lines = ["```python", "import tlnlp", "", f'pipe = tlnlp.load_pipeline("{repo_id}")', task.usage_example, "```"]
    if ensemble:
        lines += ["", f"The repo holds the ensemble's members (`{ENSEMBLE_MANIFEST}` lists them), each a complete "
                  "run; `load_pipeline` loads them all and averages their label probabilities."]
    elif adapter:
        lines += ["", f"The adapter loads on top of [{base_model}](https://huggingface.co/{base_model}); "
                  "`task_config.json` holds the label names and head size that the base model's config lacks."]
    else:
        lines += ["", "Or with transformers directly:", "", "```python",
                  "from transformers import pipeline", "",
                  f'pipe = pipeline("{tag}", model="{repo_id}")', "```"]
    return "\n".join(lines)


def _card_for_push(folder: Path, repo_id: str, adapter: bool, base_model: str | None,
                   ensemble: bool = False) -> str | None:
    """The README.md to upload: the run's card, with adapter metadata and a usage section for this repo."""
    path = folder / "README.md"
    if not path.is_file():
        logger.warning("%s has no README.md model card; the repo will have none.", folder)
        return None
    card = ModelCard.load(path)
    if adapter:
        card.data.library_name = _PEFT_TAG
        card.data.base_model = base_model
        card.data.tags = list(dict.fromkeys([*(card.data.tags or []), _PEFT_TAG]))
    text = card.text.rstrip() + "\n"
    if "## Use this model" not in text:
        found = _usage_section(repo_id, adapter, base_model, card.data.pipeline_tag, ensemble)
        usage = f"## Use this model\n\n{found}\n\n"
        text = text.replace("## Limitations", usage + "## Limitations", 1) if "## Limitations" in text \
            else text + "\n" + usage
    return f"---\n{card.data.to_yaml()}\n---\n\n{text}"


def _stage(folder: Path, files: list[str], staging: Path, replaced: dict[str, str]) -> None:
    """Mirror ``files`` into ``staging`` (symlinks, or copies where links are not allowed), with replacements."""
    for relpath in files:
        target = staging / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if relpath in replaced:
            target.write_text(replaced[relpath], encoding="utf-8")
            continue
        try:
            os.symlink((folder / relpath).resolve(), target)
        except OSError:
            shutil.copy2(folder / relpath, target)


def push_run(output_dir: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
             base_model: str | None = None, commit_message: str | None = None,
             revision: str | None = None) -> PushResult:
    """Create (or reuse) a Hub repo and upload a finished run's output folder to it in one commit.

    Args:
        output_dir: Output folder of a finished run (a saved model with ``config.json``, or an adapter with
            ``adapter_config.json``).
        repo_id: ``namespace/name``, or ``name`` for the token owner's namespace.
        private: Create the repo private (no effect on an existing repo); None uses the Hub's default.
        token: Token to use instead of ``HF_TOKEN`` / the saved login.
        base_model: For adapters: the base model's Hub id, when the run's own base is a local folder.
        commit_message: Commit summary (default: "Upload <folder name> with tlnlp").
        revision: Branch to push to (default: the repo's main branch).

    Returns:
        A :class:`PushResult`.

    Raises:
        FileNotFoundError: ``output_dir`` holds no saved model.
        HubTokenError: No token, or a file to upload contains it.
        ValueError: An adapter whose base model has no Hub id (and ``base_model`` was not given).
        UnfinishedRunError: ``output_dir`` holds an unfinished run (interrupted, or still being written).
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"output_dir={str(folder)!r} does not exist; give the output_dir of a finished run.")
    check_finished(folder, "pushing it")
    ensemble = (folder / ENSEMBLE_MANIFEST).is_file()
    adapter = not ensemble and (folder / "adapter_config.json").is_file()
    members = _model_folders(folder)  # every model is there, finished, before the token is asked for
    secret = require_token(token)
    files, replaced, hub_base = _plan(folder, members, base_model)
    _check_no_secret(folder, files, secret)
    api = HfApi(token=secret, library_name="tlnlp", library_version=__version__)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    full_id = repo_url.repo_id
    card = _card_for_push(folder, full_id, adapter, None if ensemble else hub_base, ensemble)
    if card is not None:
        replaced["README.md"] = card
    with tempfile.TemporaryDirectory(prefix="tlnlp-push-") as tmp:
        _stage(folder, files, Path(tmp), replaced)
        info = api.upload_folder(
            repo_id=full_id, folder_path=tmp, revision=revision, delete_patterns=DELETE_PATTERNS,
            commit_message=commit_message or f"Upload {folder.resolve().name} with tlnlp",
        )
    logger.info("Pushed %s (%d files) to %s", folder, len(files), repo_url)
    return PushResult(repo_id=full_id, url=str(repo_url), commit_url=str(info.commit_url), adapter=adapter,
                      base_model=None if ensemble else hub_base, files=tuple(files))


def push_run_from_args(train_args: Any, output_dir: str | Path | None = None,
                       hub_model_id: str | None = None) -> PushResult | None:
    """The finishing step of a training recipe: push the final output folder when ``--push_to_hub`` is set.

    Reuses the ``TrainingArguments`` push flags as the Hugging Face example scripts do: ``push_to_hub``,
    ``hub_model_id`` (default: the output folder's name in the token owner's namespace), ``hub_private_repo``,
    ``hub_token`` (else ``HF_TOKEN`` / saved login) and ``hub_revision``. ``hub_strategy`` decides what the
    Trainer pushes during training; the final folder, with its full card, is pushed here in every case. Only the
    main process pushes.

    Args:
        train_args: The run's ``TrainingArguments``.
        output_dir: Folder to push (default ``train_args.output_dir``).
        hub_model_id: Repo id the Trainer already resolved (``trainer.hub_model_id``), if any.

    Returns:
        The :class:`PushResult`, or None when nothing was pushed (no ``--push_to_hub``, or not the main process).
    """
    if not getattr(train_args, "push_to_hub", False):
        return None
    if getattr(train_args, "process_index", 0) != 0:
        return None
    folder = Path(output_dir or train_args.output_dir)
    repo_id = hub_model_id or train_args.hub_model_id or folder.absolute().name
    try:
        result = push_run(folder, repo_id, private=train_args.hub_private_repo, token=train_args.hub_token,
                          revision=getattr(train_args, "hub_revision", None),
                          commit_message="End of training (tlnlp)")
    except ValueError as err:
        raise type(err)(f"{err}\nThe run itself finished: every output is in {folder}. Push it later with: "
                         f"python -m tlnlp push {folder} {repo_id} [--base_model ORG/NAME]") from None
    logger.info("Model pushed to %s", result.url)
    return result
