"""One run of a method that fits a head on sentence embeddings (``feature_extraction``, ``setfit``), end to end.

Load the sentence encoder, fit (:meth:`tlnlp.methods.heads.EmbeddingMethod.fit`), save the classifier
(safetensors) and hand the run to :func:`~tlnlp.runs.finish`: the same results JSONs, predictions, plots, card
and push as a Trainer run.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tlnlp.config.run_folder import ensure_claimed
from tlnlp.methods import METHODS
from tlnlp.methods.heads import FitInputs, LabelPrior
from tlnlp.models.sentence import load_sentence_encoder
from tlnlp.runs.context import FittedRun, RunContext
from tlnlp.runs.files import write_json
from tlnlp.runs.finish import finish

__all__ = ["EmbeddingRun", "check_embedding_data", "run_embedding_method"]

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingRun:
    """The parsed arguments of a run and what the recipe resolved for it.

    Attributes:
        model_args: The sentence encoder to start from.
        data_args: Data settings (``max_seq_length`` caps the encoder's length).
        method_args: ``MethodArgs`` naming an embedding method, with its head flags.
        train_args: ``TrainingArguments``: output folder, seed, device, push flags.
        prior: The zero-shot prior for ``--head_init zero_shot`` (resolved by the recipe), else None.
        resume_from: A checkpoint to resume from (``prepare_output_dir``), else None.
        recipe: The recipe's name, for the card's command.
    """

    model_args: Any
    data_args: Any
    method_args: Any
    train_args: Any
    prior: LabelPrior | None = None
    resume_from: str | None = None
    recipe: str = "classification"


def check_embedding_data(data: Any, method: str) -> None:
    """Refuse data that a head on single-text sentence embeddings cannot learn (text pairs, multi-label rows).

    Raises:
        ValueError: Naming the data's kind and the methods that handle it.
    """
    if data.multi_label:
        raise ValueError(f"method={method!r} fits a single-label head; {data.name} is multi-label. Use "
                         "--method full (or frozen_backbone, lora...) for multi-label data.")
    if "text_pair" in data.splits["train"].column_names:
        raise ValueError(f"method={method!r} embeds single texts; {data.name} has text pairs. Use --method full "
                         "(or frozen_backbone, lora...) for pair classification.")


def _unlabeled_texts(run: EmbeddingRun, task: Any, data: Any) -> list[str] | None:
    """The texts of ``--self_training_texts`` (at most ``--self_training_samples``, seeded), or None.

    ``rest`` is the training split's texts that ``--train_samples_per_class`` / ``--max_train_samples`` left out,
    read without their labels; any other value is a text file, one text per line.

    Raises:
        ValueError: ``rest`` with no text left out, or no text in the file; the message names the flag and the fix.
    """
    source = getattr(run.method_args, "self_training_texts", None)
    if source is None:
        return None
    if source == "rest":
        args = run.data_args
        if args.train_samples_per_class is None and args.max_train_samples is None:
            raise ValueError("self_training_texts='rest' needs training texts left out of the labelled rows; every "
                             "training row is used. Fix: add --train_samples_per_class (or --max_train_samples), or "
                             "give a text file of unlabelled texts.")
        kept = set(data.splits["train"]["text"])
        full = task.load_data(dataclasses.replace(args, train_samples_per_class=None, max_train_samples=None))
        texts = [text for text in full.splits["train"]["text"] if text not in kept]
    else:
        texts = [line.strip() for line in Path(source).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise ValueError(f"self_training_texts={source!r} holds no text. Fix: give a file with one unlabelled text "
                         "per line.")
    keep = run.method_args.self_training_samples
    if len(texts) > keep:
        order = np.random.default_rng(int(run.train_args.seed)).permutation(len(texts))[:keep]
        texts = [texts[i] for i in sorted(order)]
    return texts


def _device(train_args: Any) -> str:
    return "cuda" if torch.cuda.is_available() and not getattr(train_args, "use_cpu", False) else "cpu"


def run_embedding_method(run: EmbeddingRun, task: Any, data: Any) -> dict[str, float]:
    """Fit ``run.method_args.method`` on ``data``'s training split and write every output of the run.

    Args:
        run: The run's arguments and resolved prior.
        task: The classification task (scores the splits, writes predictions and card sections).
        data: Its loaded data (``train`` and any of ``validation``/``test``).

    Returns:
        Every metric of the run (``train_*``, ``eval_*``, ``test_*``).
    """
    method = METHODS.get(run.method_args.method)
    check_embedding_data(data, method.name)
    if getattr(run.train_args, "world_size", 1) > 1:
        raise ValueError(f"method={method.name!r} fits in one process; this launch has "
                         f"{run.train_args.world_size}. Launch it with one process (accelerate launch "
                         "--config_file recipes/accelerate/cpu_1proc.yaml, or --num_processes 1).")
    loaded = load_sentence_encoder(run.model_args, device=_device(run.train_args))
    train = data.splits["train"]
    inputs = FitInputs(
        texts=list(train["text"]), labels=np.asarray(train["label"], dtype=np.int64), label_names=list(data.labels),
        prior=run.prior, seed=int(run.train_args.seed), output_dir=run.train_args.output_dir,
        max_length=run.data_args.max_seq_length, resume_from=run.resume_from,
        show_progress=not run.train_args.disable_tqdm, training=run.train_args, bf16=bool(run.train_args.bf16),
        unlabeled=_unlabeled_texts(run, task, data))
    logger.info("%s: %d training texts, encoder %s (%s), encoding in %s", method.name, len(inputs.texts),
                run.model_args.model_name_or_path, loaded.pooling, "bf16 autocast" if inputs.bf16 else "fp32")
    ensure_claimed(run.train_args.output_dir)  # locked and marked unfinished before the fit's checkpoints land
    outcome = method.fit(loaded.encoder, inputs, run.method_args)
    outcome.info.update(pooling=loaded.pooling, encode_precision="bf16" if inputs.bf16 else "fp32")
    out = Path(run.train_args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "head_fit.json", outcome.info)
    results: dict[str, float] = {}
    strength = outcome.info.get("head", {}).get("head_prior_strength")
    if strength is not None:
        results["head_prior_strength"] = float(strength)
    found = outcome.info.get("head", {}).get("self_training")
    if found is not None:
        results.update(self_training_per_class=float(found["per_class"]),
                       self_training_rows=float(found["pseudo_rows"]))
    return finish(RunContext(
        output_dir=run.train_args.output_dir, recipe=run.recipe, task=task, data=data,
        base_model=run.model_args.model_name_or_path,
        config_objects=(run.model_args, run.data_args, run.method_args, run.train_args),
        fitted=FittedRun(outcome.classifier, outcome.metrics, method, run.method_args, run.train_args),
        results=results,
        sections={"Sentence embeddings": _pooling_section(loaded.pooling, run.data_args.max_seq_length, inputs.bf16)}))


def _pooling_section(pooling: str, max_length: int | None, bf16: bool = False) -> str:
    cut = f" Texts were cut to {max_length} tokens (--max_seq_length)." if max_length else ""
    precision = (" This run encoded under bf16 autocast (--bf16; weights kept in fp32): a saved model loaded again "
                 "encodes in fp32, whose embeddings differ from these only in rounding.") if bf16 else ""
    return f"Texts become vectors by {pooling}.{cut}{precision}"
