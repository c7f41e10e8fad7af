"""``--bf16 auto``: bf16 autocast where the device multiplies bf16 matrices fast, fp32 everywhere else.

A CUDA device decides by its bf16 support. A CPU decides by measurement: some CPUs run bf16 matmuls at twice their
fp32 rate (``avx512_bf16``, AMX), others emulate them at a small fraction of it, and the flags alone do not tell
how torch's kernels fare. The measurement (a square fp32 and bf16 matmul, a fraction of a second) runs once per CPU
model, torch version and thread count and is cached in tlnlp's cache folder (:func:`tlnlp.config.cache.cache_root`).
Autocast changes only the dtype of the matmuls: weights stay fp32, frozen weights stay bit-identical, and saved
weights are fp32.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from tlnlp.config.cache import cache_root

__all__ = ["BF16_CHOICES", "BF16_ENV", "MIN_CPU_SPEEDUP", "PrecisionChoice", "choose_bf16", "cpu_bf16_speedup"]

logger = logging.getLogger(__name__)

#: Values of ``--bf16``.
BF16_CHOICES = ("auto", "true", "false")
#: Set to ``bf16`` or ``fp32`` to skip the measurement and take that answer for ``--bf16 auto`` (tests; a fleet whose
#: answer is known).
BF16_ENV = "TLNLP_BF16_AUTO"
#: A CPU's bf16 matmul must beat fp32 by this factor for ``auto`` to pick it (below it, the measurement's noise).
MIN_CPU_SPEEDUP = 1.2


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``--bf16 auto`` chose, and why (logged, and recorded with the run)."""

    bf16: bool
    reason: str


def _cpu_key() -> str:
    import torch  # deferred: importing tlnlp.config stays free of torch

    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith(("model name", "flags"))]
        model = " | ".join(names[:2]) or model
    text = f"{model}|{platform.machine()}|torch {torch.__version__}|threads {torch.get_num_threads()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _matmul_rate(dtype: object, size: int = 512, min_seconds: float = 0.1) -> float:
    """GFLOP/s of a ``size x size`` matmul in ``dtype`` on the CPU, timed over at least ``min_seconds``."""
    import torch  # deferred: as in _cpu_key

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    for _ in range(2):
        a @ b
    reps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or reps < 3:
        a @ b
        reps += 1
    return 2 * size**3 * reps / elapsed / 1e9


def cpu_bf16_speedup() -> float:
    """This CPU's bf16 matmul rate over its fp32 rate, measured once and cached.

    Returns:
        The ratio (2.0: bf16 twice as fast; 0.01: bf16 emulated, a hundred times slower).
    """
    import torch  # deferred: as in _cpu_key

    path = cache_root() / "precision" / f"cpu_bf16_{_cpu_key()}.json"
    if path.is_file():
        try:
            return float(json.loads(path.read_text(encoding="utf-8"))["bf16_over_fp32"])
        except (ValueError, KeyError, OSError):
            logger.debug("Unreadable %s; measuring again", path)
    fp32, bf16 = _matmul_rate(torch.float32), _matmul_rate(torch.bfloat16)
    ratio = bf16 / fp32
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"fp32_gflops": round(fp32, 2), "bf16_gflops": round(bf16, 2),
                                   "bf16_over_fp32": round(ratio, 4)}), encoding="utf-8")
        tmp.replace(path)
    except OSError as err:  # a read-only home: measure again next time
        logger.debug("Could not cache the bf16 measurement: %s", err)
    return ratio


def choose_bf16(use_cpu: bool = False, fp16: bool = False) -> PrecisionChoice:
    """What ``--bf16 auto`` means on this machine.

    Args:
        use_cpu: The run is forced onto the CPU.
        fp16: fp16 mixed precision is on (then bf16 stays off).

    Returns:
        bf16 on for a CUDA device with bf16, or for a CPU whose measured bf16 matmul beats fp32 by
        :data:`MIN_CPU_SPEEDUP`; off otherwise; with the reason.
    """
    import torch  # deferred: as in _cpu_key

    if fp16:
        return PrecisionChoice(False, "fp16 is on")
    forced = os.environ.get(BF16_ENV, "").strip().lower()
    if forced in ("bf16", "fp32"):
        return PrecisionChoice(forced == "bf16", f"{BF16_ENV}={forced}")
    if torch.cuda.is_available() and not use_cpu:
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice(True, f"CUDA device {torch.cuda.get_device_name(0)} supports bf16")
        return PrecisionChoice(False, f"CUDA device {torch.cuda.get_device_name(0)} has no bf16")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and not use_cpu:
        return PrecisionChoice(False, "MPS device: fp32")
    ratio = cpu_bf16_speedup()
    if ratio >= MIN_CPU_SPEEDUP:
        return PrecisionChoice(True, f"this CPU's bf16 matmul measured at {ratio:.2f}x its fp32 rate")
    return PrecisionChoice(False, f"this CPU's bf16 matmul measured at {ratio:.2f}x its fp32 rate "
                                  f"(below {MIN_CPU_SPEEDUP}x)")
