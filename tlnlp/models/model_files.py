"""Checks of a local model folder's files before transformers reads them, with errors that say how to fix them.

transformers answers a folder without ``config.json`` or with a damaged ``model.safetensors`` with a traceback
from deep inside its loader, and a folder without tokenizer files with an empty tokenizer that maps every word to
``[UNK]`` (training then runs on nothing). These checks name the folder, the file and the fix first.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open

from tlnlp.errors import UserError

__all__ = ["TOKENIZER_FILES", "ModelFileError", "ModelNotFoundError", "check_config_file", "check_tokenizer_files",
           "refuse_pickle_only"]

#: Files of which a tokenizer folder holds at least one (fast, WordPiece, BPE and SentencePiece tokenizers).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "merges.txt",
                   "spiece.model", "tokenizer.model", "sentencepiece.bpe.model")


class ModelFileError(UserError, OSError):
    """A model folder lacks a file or holds one that cannot (or must not) be loaded; the message says which."""


class ModelNotFoundError(ModelFileError, FileNotFoundError):
    """A local model path that does not exist."""


def check_config_file(path: str | Path, name: str) -> None:
    """Refuse a folder without ``config.json`` (an adapter folder, with ``adapter_config.json``, is let through).

    Args:
        path: The resolved local folder.
        name: The model as the user named it, for the message.

    Raises:
        ModelFileError: No ``config.json`` in the folder.
    """
    folder = Path(path)
    if folder.is_dir() and not (folder / "config.json").is_file() and not (folder / "adapter_config.json").is_file():
        raise ModelFileError(
            f"Model folder {name!r} has no config.json, so it holds no saved model (it has: "
            f"{', '.join(sorted(p.name for p in folder.iterdir())[:8]) or 'nothing'}). Fix: give the folder that "
            "save_pretrained() wrote (config.json and model.safetensors), a Hub id (org/name) or bundled:minilm.")


def check_tokenizer_files(path: str | Path) -> None:
    """Refuse a local folder without tokenizer files (transformers would build an empty tokenizer from config.json).

    Raises:
        ModelFileError: None of :data:`TOKENIZER_FILES` is in the folder.
    """
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFileError(
            f"{str(folder)!r} has no tokenizer: none of {', '.join(TOKENIZER_FILES[:4])}... is in it. Fix: save the "
            "tokenizer into the folder (tokenizer.save_pretrained(folder)), or name one with --tokenizer_name (a "
            "folder, a Hub id or bundled:minilm).")


def refuse_pickle_only(path: str) -> None:
    """Refuse weights tlnlp will not or cannot load: pickle only (``.bin``/``.pt``), or a damaged safetensors file.

    Unpickling can run code, so pickle weights are never loaded; a safetensors file whose header cannot be read
    (truncated by a broken download, or not safetensors at all) is named before transformers fails on it.

    Raises:
        ModelFileError: ``path`` has pickle weights and no safetensors file, or a safetensors file is damaged.
    """
    folder = Path(path)
    if not folder.is_dir():
        return
    weights = sorted(folder.glob("*.safetensors"))
    if not weights and (any(folder.glob("*.bin")) or any(folder.glob("*.pt")) or any(folder.glob("*.pth"))):
        raise ModelFileError(
            f"{path} has only pickle weights (.bin/.pt); tlnlp loads safetensors only, because unpickling "
            "can run arbitrary code. Convert them once where you trust the file: load the model and call "
            "save_pretrained(), which writes model.safetensors."
        )
    for file in weights:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as err:  # noqa: BLE001 - the reader raises its own error type for every kind of damage
            raise ModelFileError(
                f"{str(file)!r} cannot be read: {err}. Fix: the file is damaged or incomplete (an interrupted "
                "download or copy); download or copy it again, or save the model again with save_pretrained()."
            ) from None
