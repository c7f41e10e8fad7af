"""tlnlp's cache folder: converted GGUF models, the measured bf16 speed of this CPU."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_root"]

#: Environment variable that moves the cache folder.
CACHE_ENV = "TLNLP_CACHE_DIR"


def cache_root() -> Path:
    """The tlnlp cache folder: ``$TLNLP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tlnlp``, else ``~/.cache/tlnlp``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tlnlp"
