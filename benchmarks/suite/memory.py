"""Peak memory of one call: resident-set sampling on CPU, the allocator's peak on CUDA."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["peak_memory"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory(fn: Callable[[], Any], device: str = "cpu", interval: float = 0.002
                ) -> tuple[Any, float]:
    """Run ``fn()`` and return ``(result, peak extra bytes above the level before the call)``.

    CPU: the process's resident set is sampled every ``interval`` seconds (a lower bound
    on the true peak; allocations shorter than the interval can be missed). CUDA:
    ``torch.cuda.max_memory_allocated`` after resetting the peak counter.
    """
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        out = fn()
        torch.cuda.synchronize()
        return out, float(torch.cuda.max_memory_allocated() - base)
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out = fn()
    finally:
        stop.set()
        th.join()
    peak[0] = max(peak[0], _rss())
    return out, float(peak[0] - base)
