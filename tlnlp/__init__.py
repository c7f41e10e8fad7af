"""tlnlp: transfer learning for NLP on Hugging Face tools."""

from typing import Any

from tlnlp._version import __version__

__all__ = ["__version__", "load_pipeline"]


def load_pipeline(output_dir: str, **kwargs: Any) -> Any:
    """Load a run's output folder as a pipeline of its task, with its real label names or window settings.

    See :func:`tlnlp.inference.load_pipeline`.
    """
    # deferred: `import tlnlp` (and so every `import tlnlp.<sub>`) must stay light; inference pulls in torch
    from tlnlp.inference import load_pipeline as _load

    return _load(output_dir, **kwargs)
