"""ULMFiT options of ``MethodArgs``: discriminative learning rates, the LR schedule and gradual unfreezing.

Each option also works with other methods (e.g. discriminative rates with ``--method full``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UlmfitOptions"]


@dataclass
class UlmfitOptions:
    """ULMFiT flags, mixed into :class:`tlnlp.config.MethodArgs`."""

    def _check_ulmfit(self) -> None:
        """Validate the ULMFiT options; called from ``MethodArgs.__post_init__``."""
