"""tlnlp: transfer learning for NLP on Hugging Face tools."""

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_pipeline"]


def load_pipeline(output_dir: str, **kwargs: Any) -> Any:
    """Load a run's output folder as a transformers pipeline with its real label names.

    See :func:`tlnlp.inference.load_pipeline`.
    """
    from tlnlp.inference import load_pipeline as _load

    return _load(output_dir, **kwargs)
