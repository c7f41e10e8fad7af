"""tlnlp: transfer learning for NLP on Hugging Face tools."""

from typing import Any

from tlnlp._version import __version__

__all__ = ["__version__", "compare", "load_pipeline", "train"]


def load_pipeline(output_dir: str, **kwargs: Any) -> Any:
    """Load a run's output folder as a pipeline of its task, with its real label names or window settings.

    See :func:`tlnlp.inference.load_pipeline`.
    """
    # deferred: `import tlnlp` (and so every `import tlnlp.<sub>`) must stay light; inference pulls in torch
    from tlnlp.inference import load_pipeline as _load

    return _load(output_dir, **kwargs)


def train(recipe: str = "classification", config: str | None = None, **flags: Any) -> dict[str, Any]:
    """Run a recipe (``classification``, ``question_answering``, ``ulmfit``...) in this process; returns its metrics.

    ``config`` is a YAML file or the name of a shipped config; ``flags`` are the recipe's flags by name, e.g.
    ``tlnlp.train("classification", config="movie_minilm", output_dir="runs/movie", max_steps=50)``.
    See :func:`tlnlp.api.train`.
    """
    from tlnlp.api import train as _train  # deferred: as in load_pipeline

    return _train(recipe, config=config, **flags)


def compare(config: str | None = None, **flags: Any) -> dict[str, Any]:
    """Run the transfer ladder in this process, e.g. ``tlnlp.compare("movie_minilm_quick", output_dir="runs/l")``.

    See :func:`tlnlp.api.compare`.
    """
    from tlnlp.api import compare as _compare  # deferred: as in load_pipeline

    return _compare(config=config, **flags)
