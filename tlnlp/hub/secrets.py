"""Keep secrets out of what tlnlp publishes: token-named keys, secret flags and token-shaped strings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["redact_tokens", "scrub_command", "scrub_secrets"]

_SECRET_KEY = re.compile(r"(token|password|passwd|secret|credentials?|(api|secret|access|private)_?key)$",
                         re.IGNORECASE)
_SECRET_FLAG = re.compile(
    r"(?:(?<=\s)|^)--?[\w-]*(?:token|password|passwd|secret|api[_-]?key|credentials?)(?=[=\s]|$)"
    r"(?:=\S*|\s+(?!-)\S+)?",
    re.IGNORECASE,
)
_SECRET_ENV = re.compile(r"(?:(?<=\s)|^)[A-Z_]*(?:TOKEN|PASSWORD|SECRET|API_KEY)[A-Z_]*=\S*\s*")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{16,}\b")
_REDACTED = "<redacted>"


def scrub_secrets(value: Any) -> Any:
    """Drop secret-named keys from (nested) mappings and redact token-shaped strings.

    Args:
        value: A mapping, sequence or scalar (e.g. a hyperparameter dict).

    Returns:
        A copy without keys named like ``token``, ``hub_token``, ``password``, ``secret`` or ``api_key``, and
        with strings that look like Hugging Face access tokens replaced by ``<redacted>``.
    """
    if isinstance(value, Mapping):
        return {key: scrub_secrets(item) for key, item in value.items() if not _SECRET_KEY.search(str(key))}
    if isinstance(value, list):
        return [scrub_secrets(item) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub_secrets(item) for item in value)
    if isinstance(value, str):
        return _HF_TOKEN.sub(_REDACTED, value)
    return value


def scrub_command(command: str) -> str:
    """Remove secret flags (``--hub_token X``) and environment assignments (``HF_TOKEN=X``) from a command."""
    command = _SECRET_ENV.sub("", command)
    command = _SECRET_FLAG.sub("", command)
    return _HF_TOKEN.sub(_REDACTED, re.sub(r"[ \t]{2,}", " ", command)).strip()


def redact_tokens(text: str) -> str:
    """``text`` with anything shaped like a Hugging Face access token replaced by ``<redacted>``."""
    return _HF_TOKEN.sub(_REDACTED, text)
