"""Convert a GGUF checkpoint once into an ordinary safetensors folder, cached by the file's sha256.

transformers can read a GGUF file directly (``from_pretrained(folder, gguf_file=name)``), but it de-quantizes
every tensor on each load (tens of seconds on a CPU) and the result refuses ``save_pretrained``. Here the GGUF is
converted once: its de-quantized weights are copied into a plain model built from the same config (without the
``quantization_config``), and the model and tokenizer are saved as an ordinary folder (``config.json``,
``model.safetensors``, tokenizer files) that every loader reads in about a second.

The folder lives in ``<cache>/gguf/<sha256 of the GGUF>/``, where ``<cache>`` is ``$TLNLP_CACHE_DIR``, else
``$XDG_CACHE_HOME/tlnlp``, else ``~/.cache/tlnlp``. It is written to a temporary folder next to it and renamed
into place when complete, so an interrupted conversion leaves nothing that a later run would mistake for a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from tlnlp.errors import UserError

__all__ = ["CACHE_ENV", "CONVERSION_MARKER", "GGUFFileError", "GGUFPackageError", "cache_root", "convert_gguf",
           "converted_gguf_dir", "gguf_sha256"]

logger = logging.getLogger(__name__)

#: Environment variable that overrides the tlnlp cache folder.
CACHE_ENV = "TLNLP_CACHE_DIR"
#: File written last into a converted folder; it records where the weights came from.
CONVERSION_MARKER = "tlnlp_gguf_conversion.json"
_PARTIAL_PREFIX = ".partial-"
#: What transformers' GGUF reader raises for a damaged or truncated file.
_READ_ERRORS = (ValueError, KeyError, IndexError, struct.error, OSError, EOFError)


class GGUFPackageError(UserError, ImportError):
    """The ``gguf`` package, needed to read a GGUF file, is missing; it comes with the ``llm`` extra."""


class GGUFFileError(UserError, ValueError):
    """A ``.gguf`` file that is not GGUF, or is damaged or truncated; the message names it and the fix."""


def cache_root() -> Path:
    """The tlnlp cache folder: ``$TLNLP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tlnlp``, else ``~/.cache/tlnlp``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tlnlp"


def gguf_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_gguf_dir(sha256: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder that holds (or will hold) the conversion of the GGUF file with this sha256.

    Args:
        sha256: Hex sha256 of the GGUF file.
        cache_dir: Cache folder to use instead of :func:`cache_root`.

    Returns:
        ``<cache>/gguf/<sha256>``.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / "gguf" / sha256


def _is_complete(folder: Path) -> bool:
    return (folder / CONVERSION_MARKER).is_file() and (folder / "config.json").is_file() and any(
        folder.glob("*.safetensors"))


def convert_gguf(
    gguf_path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Return an ordinary safetensors folder with the model and tokenizer of a GGUF file, converting it once.

    Args:
        gguf_path: The ``.gguf`` file (any architecture transformers reads from GGUF: Llama, Qwen2, ...).
        sha256: The file's sha256 when already known (e.g. verified bundled assets); computed otherwise.
        cache_dir: Cache folder to use instead of :func:`cache_root`.

    Returns:
        ``<cache>/gguf/<sha256>/``, holding ``config.json``, ``model.safetensors`` and the tokenizer.

    Raises:
        FileNotFoundError: ``gguf_path`` does not exist.
        GGUFFileError: The file is not GGUF, or is damaged or truncated (a ``ValueError``).
        GGUFPackageError: The ``gguf`` package (``pip install 'tlnlp[llm]'``) is missing (an ``ImportError``).
    """
    source = Path(gguf_path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(f"GGUF file {str(source)!r} does not exist.")
    with source.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise GGUFFileError(f"{str(source)!r} is not a GGUF file: it starts with {magic!r}, not b'GGUF'. Fix: give a "
                            f"real .gguf file (check that the download finished), or a model folder.")
    sha256 = sha256 or gguf_sha256(source)
    target = converted_gguf_dir(sha256, cache_dir)
    if _is_complete(target):
        logger.debug("Using the converted %s at %s", source.name, target)
        return target
    if target.exists():
        logger.warning("Removing the incomplete conversion at %s and converting again.", target)
        shutil.rmtree(target)
    _require_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX + sha256[:12] + "-", dir=target.parent))
    try:
        logger.warning("Converting %s once into a safetensors folder (tens of seconds on a CPU); later loads "
                       "read %s.", source.name, target)
        _convert_into(source, partial, sha256)
        partial.chmod(0o755)  # mkdtemp made it private; the cache is as readable as any other download
        try:
            partial.rename(target)
        except OSError:
            if not _is_complete(target):  # another process finished first: keep its copy, else re-raise
                raise
            logger.info("Another process converted %s first; using its copy.", source.name)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return target


def _require_gguf() -> None:
    try:
        import gguf  # noqa: F401  # deferred: an optional extra (tlnlp[llm]); checked only when a GGUF file is read
    except ImportError as err:
        raise GGUFPackageError("Reading a GGUF file needs the gguf package: pip install 'tlnlp[llm]' "
                               "(or pip install gguf).") from err


def _read(source: Path, steps: tqdm) -> tuple[Any, Any, Any]:
    """The tokenizer, de-quantized model and config of ``source``; a damaged file is a :class:`GGUFFileError`."""
    kwargs = {"gguf_file": source.name}
    try:
        steps.set_postfix_str("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(source.parent, **kwargs)
        steps.update()
        steps.set_postfix_str("de-quantizing weights")
        quantized = AutoModelForCausalLM.from_pretrained(source.parent, dtype=torch.float32, **kwargs)
        steps.update()
        config = AutoConfig.from_pretrained(source.parent, **kwargs)
    except _READ_ERRORS as err:
        steps.close()
        raise GGUFFileError(f"{str(source)!r} cannot be read: it is damaged or truncated ({type(err).__name__}: "
                            f"{err}). Fix: download the file again and compare its sha256 with the publisher's, or "
                            f"give a model folder.") from None
    return tokenizer, quantized, config


def _convert_into(source: Path, folder: Path, sha256: str) -> None:
    """De-quantize ``source`` into a plain model and save it, its tokenizer and the marker into ``folder``."""
    steps = tqdm(total=4, desc=f"Converting {source.name}", unit="step")
    tokenizer, quantized, config = _read(source, steps)
    steps.set_postfix_str("copying into a plain model")
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.eval()
    del quantized
    steps.update()
    steps.set_postfix_str("saving")
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    marker = {"source_file": source.name, "source_sha256": sha256, "transformers_version": transformers.__version__,
              "dtype": "float32"}
    (folder / CONVERSION_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    steps.update()
    steps.close()
