"""PEFT adapter options of ``MethodArgs`` (LoRA, DoRA, AdaLoRA, IA3, prompt/prefix/p-tuning, LoHa, LoKr)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AdapterOptions"]


@dataclass
class AdapterOptions:
    """Adapter flags, mixed into :class:`tlnlp.config.MethodArgs`."""

    def _check_adapter(self) -> None:
        """Validate the adapter options; called from ``MethodArgs.__post_init__``."""
