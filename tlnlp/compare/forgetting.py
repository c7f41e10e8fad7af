"""Forgetting check: a backbone's language modelling on held-out general text, before and after fine-tuning.

Masked LMs are scored by pseudo-perplexity (each token masked in turn), causal LMs by perplexity. The LM head is
held fixed so that only the backbone's change is measured: the checkpoint's own pretrained head when it has one;
otherwise (e.g. all-MiniLM-L6-v2, a sentence encoder shipped without its MLM head) a head fitted once on the
*frozen pretrained* backbone on other general text (output projection = the pretrained input embeddings, kept
frozen; the transform and bias trained), cached on disk. The fine-tuned backbone is then put under that same head.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock
from transformers import (
    MODEL_FOR_MASKED_LM_MAPPING,
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
)

from tlnlp.assets import BUNDLED_FILES, BUNDLED_PREFIX, asset_path
from tlnlp.tasks.language_modeling.scoring import perplexity, pseudo_perplexity

__all__ = ["ForgettingProbe", "general_texts"]

logger = logging.getLogger(__name__)

_HEAD_FIT = {"texts": 2000, "epochs": 4, "batch_size": 256, "learning_rate": 2e-3, "mlm_probability": 0.15}


def general_texts(source: str, seed: int = 0) -> list[str]:
    """Held-out general text: ``bundled:movie_dialog`` (film dialogue lines) or a plain text file, one per line.

    Lines of fewer than 5 words are dropped, duplicates removed, and the rest shuffled with ``seed``.

    Raises:
        ValueError: Unknown source or too few usable lines.
    """
    if source == BUNDLED_PREFIX + "movie_dialog":
        raw = asset_path(BUNDLED_FILES["movie_dialog"]).read_text(encoding="utf-8", errors="replace")
        lines = [part for line in raw.splitlines() for part in line.split("\t")]
    elif Path(source).is_file():
        lines = Path(source).read_text(encoding="utf-8", errors="replace").splitlines()
    else:
        raise ValueError(f"forgetting_text={source!r} is neither bundled:movie_dialog nor an existing text file.")
    seen: dict[str, None] = {}
    for line in lines:
        text = " ".join(line.split())
        if len(text.split()) >= 5:
            seen.setdefault(text, None)
    texts = list(seen)
    if len(texts) < 10:
        raise ValueError(f"forgetting_text={source!r} has only {len(texts)} lines of 5+ words; give more text.")
    order = np.random.default_rng(seed).permutation(len(texts))
    return [texts[i] for i in order]


def _is_masked_lm(config: Any) -> bool:
    return type(config) in MODEL_FOR_MASKED_LM_MAPPING


def _backbone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """State dict of a classifier's backbone (adapters merged into a copy first)."""
    try:
        from peft import PeftModel  # deferred: peft is imported only when a backbone is measured
    except ImportError:  # pragma: no cover - peft is a dependency
        PeftModel = ()  # noqa: N806
    if isinstance(model, PeftModel):
        model = copy.deepcopy(model).merge_and_unload()
    return {k: v.detach() for k, v in getattr(model, model.base_model_prefix).state_dict().items()}


class ForgettingProbe:
    """Scores backbones of one pretrained checkpoint on held-out general text with a fixed LM head.

    Args:
        model_path: Resolved path (or Hub id) of the pretrained backbone.
        tokenizer: Its tokenizer.
        texts: General texts, shuffled; the first ``samples`` are scored, the next ones fit a missing MLM head.
        samples: Texts scored.
        max_length: Tokens per text.
        device: Where to run.
        cache_dir: Folder for a fitted MLM head (``mlm_head_<hash>.pt``, loaded with ``weights_only``).
    """

    def __init__(self, model_path: str, tokenizer: Any, texts: list[str], samples: int, max_length: int,
                 device: str = "cpu", cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.model_path = model_path
        self.tokenizer = tokenizer
        self.eval_texts = texts[:samples]
        self.fit_texts = texts[samples:samples + _HEAD_FIT["texts"]]
        self.max_length = max_length
        self.device = device
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.masked = _is_masked_lm(AutoConfig.from_pretrained(model_path))
        self.measure_name = "pseudo_perplexity" if self.masked else "perplexity"
        self.head = "pretrained"
        self._lm: Any = None
        self._pretrained_state: dict[str, torch.Tensor] = {}
        self._before: float | None = None

    @property
    def before(self) -> float:
        """The pretrained backbone's score (loads the LM, and fits or loads its head, on first use)."""
        if self._before is None:
            self._lm = self._load_lm()
            self._pretrained_state = {k: v.clone() for k, v in _backbone_state(self._lm).items()}
            self._before = self._score()
            logger.info("Forgetting check: %s of the pretrained backbone on %d general texts = %.2f (%s head)",
                        self.measure_name, len(self.eval_texts), self._before, self.head)
        return self._before

    def settings(self) -> dict[str, Any]:
        """What the probe's numbers depend on (part of each trained cell's key)."""
        digest = hashlib.sha256("\n".join(self.eval_texts).encode("utf-8")).hexdigest()[:16]
        return {"measure": self.measure_name, "texts": digest, "max_length": self.max_length, "head_fit": _HEAD_FIT}

    def _load_lm(self) -> Any:
        auto = AutoModelForMaskedLM if self.masked else AutoModelForCausalLM
        with torch.random.fork_rng(devices=[]):  # a missing head starts from the same weights in every process
            torch.manual_seed(0)
            model, info = auto.from_pretrained(self.model_path, output_loading_info=True, use_safetensors=True)
        model.to(self.device).eval()
        out = model.get_output_embeddings()
        out.weight = torch.nn.Parameter(out.weight.detach().clone())  # untie: the head stays fixed
        prefix = model.base_model_prefix
        missing_head = [k for k in info["missing_keys"] if not k.startswith(prefix + ".")]
        if missing_head:
            if not self.masked:
                raise ValueError(f"{self.model_path} has no pretrained LM head ({missing_head[:3]}); the forgetting "
                                 "check needs one for causal models. Turn it off with --check_forgetting false.")
            self.head = "fitted"
            self._fit_or_load_head(model)
        return model

    def _head_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps({"model": str(self.model_path), "fit": _HEAD_FIT, "max_length": self.max_length,
                          "texts": hashlib.sha256("\n".join(self.fit_texts).encode()).hexdigest()}, sort_keys=True)
        return self.cache_dir / f"mlm_head_{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"

    def _trainable_head(self, model: Any) -> dict[str, torch.nn.Parameter]:
        prefix = model.base_model_prefix + "."
        decoder = model.get_output_embeddings().weight
        return {n: p for n, p in model.named_parameters() if not n.startswith(prefix) and p is not decoder}

    def _fit_or_load_head(self, model: Any) -> None:
        head = self._trainable_head(model)
        path = self._head_file()
        if path is None:
            self._fit_head(model, head)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock"):  # parallel cells (--workers, Ray) fit the head once
            if path.is_file():
                state = torch.load(path, map_location=self.device, weights_only=True)
                with torch.no_grad():
                    for name, param in head.items():
                        param.copy_(state[name])
                logger.info("Loaded the fitted MLM head from %s", path)
                return
            self._fit_head(model, head)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({n: p.detach().cpu() for n, p in head.items()}, tmp)
            tmp.replace(path)

    def _masked_states(self, model: Any, collator: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states of the frozen backbone at masked positions of the fitting texts, and their targets."""
        base = getattr(model, model.base_model_prefix)
        states, targets = [], []
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            torch.manual_seed(0)  # the same masks in every process; the caller's random state is left as it was
            for start in range(0, len(self.fit_texts), 64):
                encoded = [self.tokenizer(t, truncation=True, max_length=self.max_length)
                           for t in self.fit_texts[start:start + 64]]
                batch = {k: v.to(self.device) for k, v in collator(encoded).items()}
                labels = batch.pop("labels")
                hidden = base(**batch).last_hidden_state
                chosen = labels != -100
                states.append(hidden[chosen].clone())
                targets.append(labels[chosen].clone())
        return torch.cat(states), torch.cat(targets)

    def _fit_head(self, model: Any, head: dict[str, torch.nn.Parameter]) -> None:
        """Train the head's own weights on the frozen backbone's states at masked positions.

        Cheap: the backbone runs once over the fitting texts; only the head runs in the training loop.
        """
        prefix = model.base_model_prefix
        children = [m for name, m in model.named_children() if name != prefix]
        if len(children) != 1:
            raise ValueError(f"{type(model).__name__} has no single MLM head module to fit; turn the forgetting "
                             "check off with --check_forgetting false.")
        # masks from torch's generator seeded with 0 inside _masked_states (the collator's own ``seed`` refuses to
        # run in a process that multiprocessing started, as a ladder worker is)
        collator = DataCollatorForLanguageModeling(self.tokenizer, mlm_probability=_HEAD_FIT["mlm_probability"])
        logger.info("Fitting an MLM head on the frozen pretrained backbone (%d texts, %d epochs; cached afterwards)",
                    len(self.fit_texts), _HEAD_FIT["epochs"])
        states, targets = self._masked_states(model, collator)
        for param in model.parameters():
            param.requires_grad_(False)
        for param in head.values():
            param.requires_grad_(True)
        optimizer = torch.optim.AdamW(list(head.values()), lr=_HEAD_FIT["learning_rate"])
        generator = torch.Generator().manual_seed(0)
        with torch.enable_grad():
            for _ in range(_HEAD_FIT["epochs"]):
                for rows in torch.randperm(len(targets), generator=generator).split(_HEAD_FIT["batch_size"]):
                    logits = children[0](states[rows])
                    loss = torch.nn.functional.cross_entropy(logits.float(), targets[rows])
                    loss.backward()
                    optimizer.step()
                    optimizer.zero_grad()
        for param in model.parameters():
            param.requires_grad_(False)

    def _score(self) -> float:
        score = pseudo_perplexity if self.masked else perplexity
        return score(self._lm, self.tokenizer, self.eval_texts, max_length=self.max_length, device=self.device)

    def measure(self, model: torch.nn.Module) -> dict[str, Any]:
        """Score the backbone of a fine-tuned classifier under the fixed head; returns before, after and change."""
        before = self.before
        base = getattr(self._lm, self._lm.base_model_prefix)
        tuned = _backbone_state(model)
        missing, _unexpected = base.load_state_dict(tuned, strict=False)
        if missing:
            raise ValueError(f"The fine-tuned backbone lacks {len(missing)} weights of the LM backbone, e.g. "
                             f"{missing[:3]}; it is not the same architecture.")
        try:
            after = self._score()
        finally:
            base.load_state_dict(self._pretrained_state, strict=False)
        return {"measure": self.measure_name, "head": self.head, "before": before, "after": after,
                "change_pct": 100.0 * (after - before) / before}
