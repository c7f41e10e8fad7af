"""Cost measurements of a cell: wall time and peak memory (process RSS on CPU, allocated memory on CUDA)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

import psutil
import torch

__all__ = ["PeakMemory", "resolve_device"]


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other names are checked and returned."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but no CUDA device is visible; use --device cpu (or auto).")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device={name!r} is not valid; choose auto, cpu, cuda or cuda:N.")
    return name


class PeakMemory:
    """Context manager recording the peak memory of the code inside it, in MiB.

    On CPU a background thread samples the process's resident set size (RSS) every ``interval`` seconds; the
    peak therefore includes what the process held before (the loaded data and libraries). On CUDA it is
    ``torch.cuda.max_memory_allocated`` after a reset, i.e. the tensors of this cell only.

    Attributes:
        peak_mb: The peak, set on exit.
        kind: ``"rss"`` or ``"cuda_allocated"``.
        seconds: Wall time inside the block.
    """

    def __init__(self, device: str = "cpu", interval: float = 0.05) -> None:
        self.device = device
        self.interval = interval
        self.kind = "cuda_allocated" if device.startswith("cuda") else "rss"
        self.peak_mb = 0.0
        self.seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_bytes = 0
        self._start = 0.0

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self._peak_bytes = max(self._peak_bytes, process.memory_info().rss)
            if self._stop.wait(self.interval):
                break

    def __enter__(self) -> PeakMemory:
        if self.kind == "cuda_allocated":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread = threading.Thread(target=self._sample, name="tlnlp-peak-memory", daemon=True)
            self._thread.start()
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.seconds = time.perf_counter() - self._start
        if self.kind == "cuda_allocated":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak_bytes = max(self._peak_bytes, psutil.Process().memory_info().rss)
        self.peak_mb = self._peak_bytes / 2**20
