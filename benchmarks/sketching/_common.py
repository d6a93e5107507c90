"""Shared helpers of the sketching benchmarks: timing, machine line, table/CSV/markdown."""

from __future__ import annotations

import csv
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).resolve().parents[1] / "results"


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), {gpu}")


def timed(fn: Callable[[], Any], *, sync: bool = False) -> tuple[float, Any]:
    """Wall time of one call (CUDA synchronized when ``sync``) and its result."""
    if sync:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def write_results(name: str, rows: list[dict], *, title: str, notes: list[str]) -> None:
    """Print a table and write ``benchmarks/results/sketching_<name>.csv`` and ``.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0].keys())
    with open(RESULTS / f"sketching_{name}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
        return str(v)

    cells = [[fmt(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = " | ".join(k.ljust(w) for k, w in zip(keys, widths))
    md = [f"### {title}", "", "| " + " | ".join(keys) + " |",
          "|" + "|".join("---" for _ in keys) + "|"]
    md += ["| " + " | ".join(c) + " |" for c in cells]
    md += [""] + [f"- {n}" for n in notes] + [f"- machine: {machine()}", ""]
    (RESULTS / f"sketching_{name}.md").write_text("\n".join(md))
    print(title)
    print(line)
    print("-" * len(line))
    for c in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(c, widths)))
    for n in notes:
        print("note:", n)
    print("machine:", machine())
