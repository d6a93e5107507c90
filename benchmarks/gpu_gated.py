"""Issue 4, target 4: gated ReLU at n = 10⁶, d = 100, 1,000 patterns on one GPU.

    PYTHONPATH=src python3 benchmarks/gpu_gated.py                  # CUDA if present
    PYTHONPATH=src python3 benchmarks/gpu_gated.py --pyscnn         # + pyscnn R-FISTA on CUDA
    PYTHONPATH=src python3 benchmarks/gpu_gated.py --tiny           # CPU smoke test

Squared loss, planted two-layer teacher (y standardized), λ = 1e-3 (SPEC scaling), no
intercept, ``tol`` = 1e-6 (relative certificate gap). Reports the wall time to the
certified gap, the time per iteration, and that time against the two matrix products an
iteration needs (``X W`` for the forward pass and ``Xᵀ M`` for the adjoint, 4·n·d·p flops):
both against the products timed on this GPU and against the GPU's peak rate
(efficiency %). Without CUDA it runs a tiny CPU version (n = 20,000, d = 20, p = 100).
Writes ``benchmarks/results/gpu_gated_<device>.{csv,md}``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchmarks.suite.machine import describe, resolve_device  # noqa: E402
from benchmarks.suite.report import markdown_table  # noqa: E402

#: Dense peak rates (flop/s) by GPU name fragment and dtype, from the vendors' data sheets.
#: FP32 without TF32 (PyTorch's default for matmul); FP64 with tensor cores.
PEAKS = {
    "H100 SXM": {"float32": 67e12, "tf32": 495e12, "float64": 67e12},
    "H100 PCIe": {"float32": 51e12, "tf32": 378e12, "float64": 51e12},
    "H100": {"float32": 67e12, "tf32": 495e12, "float64": 67e12},
    "H200": {"float32": 67e12, "tf32": 495e12, "float64": 67e12},
    "A100": {"float32": 19.5e12, "tf32": 156e12, "float64": 19.5e12},
}


def _peak(device_name: str, dtype: str, tf32: bool) -> float | None:
    key = "tf32" if (dtype == "float32" and tf32) else dtype
    for frag, table in PEAKS.items():
        if frag in device_name:
            return table.get(key)
    return None


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, reps: int = 10) -> float:
    fn()
    _sync(device)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def make_data(n: int, d: int, device: str, dtype, seed: int = 0):
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    X = torch.randn(n, d, generator=g, device=device, dtype=dtype)
    W = torch.randn(d, 10, generator=g, device=device, dtype=dtype) / d**0.5
    a = torch.linspace(-1.5, 1.5, 10, device=device, dtype=dtype)
    y = torch.relu(X @ W) @ a + 0.1 * torch.randn(n, generator=g, device=device, dtype=dtype)
    y = (y - y.mean()) / y.std()
    return X, y


def gated_objective_torch(X, y, G, W1, W2, lam: float) -> float:
    """SPEC §3 value of a gated network (computed in chunks, float64 accumulation)."""
    n = X.shape[0]
    total = 0.0
    for s in range(0, n, 100_000):
        Xs = X[s : s + 100_000].double()
        out = (((Xs @ G) >= 0) * (Xs @ W1)) @ W2
        total += float(((out[:, 0] - y[s : s + 100_000].double()) ** 2).sum())
    reg = float((W1**2).sum() + (W2**2).sum())
    return 0.5 * total / n + 0.5 * lam * reg


def run_convexnn(X, y, p: int, lam: float, tol: float, device: str, dtype: str) -> dict:
    import convexnn

    # Warm-up (CUDA context, kernels, allocator) on a small slice, not timed.
    warm = convexnn.ConvexGatedReLURegressor(lam=lam, patterns=min(p, 50), tol=1e-3, grow=False,
                                             fit_intercept=False, random_state=0, device=device)
    warm.fit(X[:5000], y[:5000])
    est = convexnn.ConvexGatedReLURegressor(lam=lam, patterns=p, tol=tol, fit_intercept=False,
                                            grow=False, random_state=0, device=device,
                                            dtype=dtype)
    _sync(device)
    t0 = time.perf_counter()
    est.fit(X, y)
    _sync(device)
    elapsed = time.perf_counter() - t0
    cert = est.certificate_
    return dict(solver="convexnn_gated", time=elapsed, n_iter=int(est.n_iter_),
                time_per_iter=elapsed / max(int(est.n_iter_), 1), objective=float(est.objective_),
                rel_gap=float(cert.rel_gap), scope=str(cert.scope),
                n_patterns=int(getattr(est, "n_patterns_", p)), est=est)


def run_pyscnn(X, y, G, lam: float, device: str, max_iters: int) -> dict:
    try:
        from scnn.metrics import Metrics
        from scnn.models import ConvexGatedReLU
        from scnn.optimize import optimize_model
        from scnn.regularizers import NeuronGL1
        from scnn.solvers import RFISTA
    except ImportError:
        return dict(solver="pyscnn_rfista", note="skipped: pyscnn is not installed here")
    Xn = X.detach().cpu().numpy()
    yn = y.detach().cpu().numpy()
    model = ConvexGatedReLU(G, c=1, bias=False)
    metrics = Metrics(metric_freq=25)
    t0 = time.perf_counter()
    nc, met = optimize_model(model, RFISTA(model, max_iters=max_iters, tol=1e-10), metrics, Xn,
                             yn, regularizer=NeuronGL1(lam), unitize_data=False,
                             device="cuda" if device.startswith("cuda") else "cpu",
                             dtype="float32")
    _sync(device)
    elapsed = time.perf_counter() - t0
    iters = max(len(getattr(met, "objective", [])) - 1, 1) * 25
    return dict(solver="pyscnn_rfista", time=elapsed, n_iter=iters,
                time_per_iter=elapsed / iters, nc=nc,
                note=f"max_iters={max_iters}; iterations ≈ metric records × 25; "
                     "includes host→device copy of X")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="gated ReLU on one GPU (issue 4, target 4)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--d", type=int, default=None)
    ap.add_argument("--patterns", type=int, default=None)
    ap.add_argument("--lam", type=float, default=1e-3)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--tf32", action="store_true", help="allow TF32 tensor cores in matmul")
    ap.add_argument("--pyscnn", action="store_true", help="also run pyscnn's R-FISTA")
    ap.add_argument("--pyscnn-max-iters", type=int, default=1000)
    ap.add_argument("--tiny", action="store_true", help="CPU-sized problem")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    device = resolve_device(args.device)
    tiny = args.tiny or not device.startswith("cuda")
    n = args.n or (20_000 if tiny else 1_000_000)
    d = args.d or (20 if tiny else 100)
    p = args.patterns or (100 if tiny else 1_000)
    torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
    dt = torch.float32 if args.dtype == "float32" else torch.float64
    command = "PYTHONPATH=src python3 benchmarks/gpu_gated.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    machine = describe(device)
    print(f"# {command}\n# {machine}\n# n={n} d={d} p={p} dtype={args.dtype} tf32={args.tf32}")

    X, y = make_data(n, d, device, dt)
    # The two products of one iteration, timed on their own.
    W = torch.randn(d, p, device=device, dtype=dt)
    M = torch.randn(n, p, device=device, dtype=dt)
    t_fwd = _time(lambda: X @ W, device)
    t_adj = _time(lambda: X.T @ M, device)
    M = None  # free it before the fit
    flops = 4.0 * n * d * p
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    peak = _peak(name, args.dtype, args.tf32)
    t_peak = flops / peak if peak else float("nan")

    rows = []
    res = run_convexnn(X, y, p, args.lam, args.tol, device, args.dtype)
    est = res.pop("est")
    rows.append(res)
    print(f"convexnn: {res['time']:.2f}s, {res['n_iter']} iterations, "
          f"{1e3 * res['time_per_iter']:.2f} ms/iter, rel gap {res['rel_gap']:.2e} "
          f"({res['scope']})")
    if args.pyscnn:
        # The same p gates convexnn sampled (rows; pyscnn wants columns), not only the
        # gates of its surviving neurons.
        G = getattr(est, "_convex_gates", None)
        G = np.asarray(G).T if G is not None else np.random.default_rng(0).standard_normal(
            (d, p))
        pr = run_pyscnn(X, y, np.asarray(G, dtype=np.float32), args.lam, device,
                        args.pyscnn_max_iters)
        nc = pr.pop("nc", None)
        if nc is not None:
            W1 = torch.as_tensor(np.asarray(nc.parameters[0]).T, device=device,
                                 dtype=torch.float64)
            W2 = torch.as_tensor(np.asarray(nc.parameters[1]).T, device=device,
                                 dtype=torch.float64)
            Gt = torch.as_tensor(np.asarray(nc.G), device=device, dtype=torch.float64)
            pr["objective"] = gated_objective_torch(X, y, Gt, W1, W2, args.lam)
        rows.append(pr)
        print(f"pyscnn: {pr}")
    df = pd.DataFrame(rows)
    df["n"], df["d"], df["patterns"], df["dtype"], df["device"] = n, d, p, args.dtype, name
    df["products_time"] = t_fwd + t_adj
    df["products_at_peak"] = t_peak
    df["efficiency_vs_products_%"] = 100 * (t_fwd + t_adj) / df["time_per_iter"]
    df["efficiency_vs_peak_%"] = 100 * t_peak / df["time_per_iter"]
    if "objective" in df and len(df) > 1:
        df["objective_vs_convexnn"] = df["objective"] / df["objective"].iloc[0]
    met = (res["rel_gap"] <= args.tol) and res["time"] < 10.0
    verdict = (f"Target 4 (n=10⁶, d=100, 1,000 patterns, rel gap ≤ 1e-6 in < 10 s): "
               f"{'MET' if met else 'NOT MET'} — {res['time']:.2f} s, gap {res['rel_gap']:.2e}"
               if not tiny else "tiny CPU run: the target applies to the CUDA run only")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"gpu_gated_{'tiny_' if tiny else ''}{device.replace(':', '')}"
    df.to_csv(out / f"{stem}.csv", index=False)
    cols = [c for c in ["solver", "n", "d", "patterns", "dtype", "time", "n_iter",
                        "time_per_iter", "products_time", "products_at_peak",
                        "efficiency_vs_products_%", "efficiency_vs_peak_%", "objective",
                        "objective_vs_convexnn", "rel_gap", "scope", "note"] if c in df]
    md = "\n".join([f"# Gated ReLU on {name}", "", f"Command: `{command}`  ",
                    f"Machine: {machine}", "", markdown_table(df, cols), "",
                    f"Two products per iteration: X W {1e3 * t_fwd:.2f} ms + Xᵀ M "
                    f"{1e3 * t_adj:.2f} ms measured; {flops / 1e9:.1f} GFLOP"
                    + (f", {1e3 * t_peak:.2f} ms at the data-sheet peak ({peak / 1e12:.0f} "
                       "TFLOP/s)." if peak else " (no data-sheet peak known for this device)."),
                    "", verdict])
    (out / f"{stem}.md").write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
