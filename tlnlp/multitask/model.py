"""One shared encoder with one classification head per task; a batch's task id routes it to its head.

Each head is the head of an ordinary transformers classifier (``BertForSequenceClassification``...) loaded for that
task's labels, so any architecture tlnlp loads works and each task's forward pass and loss are exactly the single-task
classifier's. The classifiers keep a plain reference to the one shared encoder instead of a registered copy: the
encoder's weights appear once (in ``encoder.*``), the heads' in ``heads.<task>.*``. :meth:`standalone` gives back a
task's ordinary classifier (shared encoder + that head), which saves as a plain transformers model folder.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import set_seed

from tlnlp.models import load_classifier

__all__ = ["MultiTaskClassifier", "build_multitask_model"]

logger = logging.getLogger(__name__)


class MultiTaskClassifier(torch.nn.Module):
    """A shared encoder and one sequence-classification head per task.

    Args:
        classifiers: Task name -> a transformers sequence classifier for that task's labels, in task-id order. The
            first one's encoder becomes the shared encoder; the others' encoders are dropped.

    Attributes:
        encoder: The shared encoder (possibly wrapped by an adapter, see :meth:`set_encoder`).
        heads: Task name -> the task's classifier without a registered encoder (its head weights only).
        task_names: Task names by task id.
        prefix: The attribute under which a classifier holds its encoder (``bert``, ``roberta``...).
    """

    def __init__(self, classifiers: Mapping[str, Any]) -> None:
        super().__init__()
        if not classifiers:
            raise ValueError("a multi-task model needs at least one task.")
        self.task_names = list(classifiers)
        first = classifiers[self.task_names[0]]
        self.prefix = first.base_model_prefix
        self.encoder = getattr(first, self.prefix)
        self.heads = torch.nn.ModuleDict()
        for name, classifier in classifiers.items():
            del classifier._modules[self.prefix]  # the encoder is registered once, as self.encoder
            classifier.__dict__[self.prefix] = self.encoder  # the classifier's forward still finds it
            self.heads[name] = classifier

    def set_encoder(self, encoder: torch.nn.Module) -> None:
        """Replace the shared encoder (e.g. by its adapter-wrapped self) for every head."""
        self.encoder = encoder
        for head in self.heads.values():
            head.__dict__[self.prefix] = encoder

    def num_labels(self, task: str) -> int:
        """The number of classes of ``task``'s head."""
        return int(self.heads[task].config.num_labels)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                task_ids: torch.Tensor | None = None) -> Any:
        """Run the batch through the encoder and the head of its task (every row of a batch has one task).

        Raises:
            ValueError: No ``task_ids``, rows of several tasks, or an unknown task id.
        """
        if task_ids is None:
            raise ValueError("a multi-task batch needs task_ids (the task of its rows); build batches with "
                             "tlnlp.multitask.MultiTaskDataset.")
        task = int(task_ids.reshape(-1)[0])
        if bool((task_ids != task).any()):
            raise ValueError(f"a batch holds rows of several tasks ({sorted(set(task_ids.tolist()))}); each batch must "
                             "hold one task (see tlnlp.multitask.MultiTaskSampler).")
        if not 0 <= task < len(self.task_names):
            raise ValueError(f"task id {task} is not one of 0..{len(self.task_names) - 1}.")
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                  "labels": labels}
        return self.heads[self.task_names[task]](**{k: v for k, v in inputs.items() if v is not None})

    def plain_encoder(self) -> torch.nn.Module:
        """The encoder as a plain transformers model: itself, or a copy with its adapter merged into the weights."""
        if hasattr(self.encoder, "merge_and_unload"):  # a PEFT model
            return copy.deepcopy(self.encoder).merge_and_unload()
        return self.encoder

    def standalone(self, task: str, encoder: torch.nn.Module | None = None) -> Any:
        """``task``'s ordinary sequence classifier: a copy of its head on ``encoder`` (default: :meth:`plain_encoder`).

        The encoder is shared, not copied: the classifier reads the trained weights; saving it writes a plain
        transformers model folder with the task's label names.
        """
        if task not in self.heads:
            raise KeyError(f"task {task!r} is not one of: {', '.join(self.task_names)}")
        shell = self.heads[task]
        del shell.__dict__[self.prefix]  # copy the head only
        try:
            classifier = copy.deepcopy(shell)
        finally:
            shell.__dict__[self.prefix] = self.encoder
        classifier._modules[self.prefix] = encoder if encoder is not None else self.plain_encoder()
        return classifier


def build_multitask_model(model_args: Any, datas: Sequence[Any], names: Sequence[str],
                          seed: int) -> tuple[MultiTaskClassifier, Any]:
    """Load the encoder once per task with that task's head, and join them into one :class:`MultiTaskClassifier`.

    Each head is initialised after ``set_seed(seed)``, so it starts exactly as the same task's head of a
    single-task run with that seed (e.g. the ``--baseline single_task`` runs).

    Args:
        model_args: The starting model (``ModelArgs``).
        datas: Each task's data (labels, multi-label flag), in task order.
        names: The tasks' names.
        seed: The run's seed.

    Returns:
        ``(model, tokenizer)``.
    """
    classifiers: dict[str, Any] = {}
    tokenizer = None
    for name, data in zip(names, datas, strict=True):
        set_seed(seed)
        model, loaded = load_classifier(model_args, labels=list(data.labels), multi_label=data.multi_label)
        classifiers[name] = model
        tokenizer = tokenizer or loaded
    model = MultiTaskClassifier(classifiers)
    logger.info("Multi-task model: one %s encoder, heads %s", type(model.encoder).__name__,
                {name: model.num_labels(name) for name in model.task_names})
    return model, tokenizer
