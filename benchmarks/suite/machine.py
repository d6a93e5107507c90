"""A one-line description of the machine, written next to every result."""

from __future__ import annotations

import os
import platform

__all__ = ["describe", "resolve_device"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    return platform.processor() or "unknown CPU"


def resolve_device(device: str) -> str:
    """``"auto"`` → ``"cuda"`` when available, else ``"cpu"``; ``"cuda"`` must exist."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: CUDA is not available on this machine")
    return device


def describe(device: str = "cpu") -> str:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    s = (f"{_cpu_model()}, {cores} cores available, torch {torch.__version__} "
         f"({torch.get_num_threads()} threads), Python {platform.python_version()}")
    if device.startswith("cuda") and torch.cuda.is_available():
        s += f"; GPU {torch.cuda.get_device_name(0)}"
    return s
