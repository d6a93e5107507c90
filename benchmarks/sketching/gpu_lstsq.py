"""Target 3 (GPU): sketch-preconditioned least squares vs torch.linalg.lstsq on CUDA.

Part 1, full rank: ``A`` (n × d, float64, condition number ``--cond``) on the device;
both solvers timed (median of ``--reps``, synchronized) and compared on the objective
``f(x) = ‖Ax − b‖²`` (relative excess over the better of the two).
Part 2, rank deficient: ``A = B C`` of rank ``r < d``; the minimum-norm solution is
computed from an SVD; ``torch.linalg.lstsq`` (QR without pivoting on CUDA) vs ours.

    # on the GPU machine (dask not needed):
    PYTHONPATH=src python3 benchmarks/sketching/gpu_lstsq.py --n 1000000 --d 1000
    # tiny CPU check:
    PYTHONPATH=src python3 benchmarks/sketching/gpu_lstsq.py --quick --device cpu
"""

from __future__ import annotations

import argparse

import torch
from _common import median, timed, write_results

from convexnn.sketching import lstsq


def problem(n, d, cond, device, gen):
    a = torch.randn(n, d, generator=gen, device=device, dtype=torch.float64)
    v = torch.linalg.qr(torch.randn(d, d, generator=gen, device=device,
                                    dtype=torch.float64)).Q
    s = torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), d, device=device,
                       dtype=torch.float64)
    a = (a * s) @ v.T
    b = a @ torch.randn(d, generator=gen, device=device, dtype=torch.float64)
    b += 0.1 * torch.randn(n, generator=gen, device=device, dtype=torch.float64)
    return a, b


def f(a, b, x) -> float:
    return float(torch.sum((a @ x - b) ** 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--cond", type=float, default=1e6)
    ap.add_argument("--rank-n", type=int, default=200_000)
    ap.add_argument("--rank-d", type=int, default=1000)
    ap.add_argument("--rank", type=int, default=700)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sketch", default="auto")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = dev.type == "cuda"
    if args.quick:
        args.n, args.d, args.rank_n, args.rank_d, args.rank, args.reps = (
            20_000, 100, 5_000, 60, 40, 1)
    gen = torch.Generator(device=dev).manual_seed(0)
    rows = []

    # --- part 1: full rank, speed at equal accuracy ---------------------------------
    a, b = problem(args.n, args.d, args.cond, dev, gen)
    torch.linalg.lstsq(a[:2000], b[:2000])  # warm-up (cuSOLVER/MAGMA handles)
    lstsq(a[: 20 * args.d], b[: 20 * args.d], method="preconditioned", random_state=0)
    t_t, t_o = [], []
    for r in range(args.reps):
        t, x_t = timed(lambda: torch.linalg.lstsq(a, b.unsqueeze(1)).solution[:, 0], sync=sync)
        t_t.append(t)
        t, (x_o, info) = timed(lambda r=r: lstsq(a, b, method="preconditioned",
                                                 sketch=args.sketch, random_state=r,
                                                 return_info=True), sync=sync)
        t_o.append(t)
    f_t, f_o = f(a, b, x_t), f(a, b, x_o)
    best = min(f_t, f_o)
    for name, ts, fx, it in (("torch.linalg.lstsq", t_t, f_t, "-"),
                             (f"ours preconditioned ({info.sketch}, m={info.sketch_size})",
                              t_o, f_o, info.n_iter)):
        rows.append({"case": f"full rank {args.n}x{args.d} cond {args.cond:.0e}",
                     "solver": name, "time_s": median(ts), "iters": it,
                     "rel_obj_excess": (fx - best) / best,
                     "speedup_vs_torch": median(t_t) / median(ts), "x_norm": "-",
                     "min_norm_x_norm": "-"})
    del a, b, x_t, x_o
    if sync:
        torch.cuda.empty_cache()

    # --- part 2: rank deficient ---------------------------------------------------------
    n2, d2, r2 = args.rank_n, args.rank_d, args.rank
    bb = torch.randn(n2, r2, generator=gen, device=dev, dtype=torch.float64)
    cc = torch.randn(r2, d2, generator=gen, device=dev, dtype=torch.float64)
    a = bb @ cc
    b = a @ torch.randn(d2, generator=gen, device=dev, dtype=torch.float64)
    b += torch.randn(n2, generator=gen, device=dev, dtype=torch.float64)
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    keep = s > s[0] * max(n2, d2) * torch.finfo(torch.float64).eps
    x_ref = vh[keep].T @ ((u[:, keep].T @ b) / s[keep])
    f_ref = f(a, b, x_ref)
    t, x_t = timed(lambda: torch.linalg.lstsq(a, b.unsqueeze(1)).solution[:, 0], sync=sync)
    t2, (x_o, info) = timed(lambda: lstsq(a, b, method="preconditioned", random_state=0,
                                          return_info=True), sync=sync)
    for name, tt, x in (("torch.linalg.lstsq", t, x_t), ("ours preconditioned", t2, x_o)):
        fx = f(a, b, x)
        ok = bool(torch.isfinite(x).all())
        rows.append({"case": f"rank {r2} of {n2}x{d2}", "solver": name, "time_s": tt,
                     "iters": info.n_iter if name.startswith("ours") else "-",
                     "rel_obj_excess": (fx - f_ref) / f_ref if ok else float("nan"),
                     "speedup_vs_torch": t / tt,
                     "x_norm": float(torch.linalg.vector_norm(x)) if ok else float("nan"),
                     "min_norm_x_norm": float(torch.linalg.vector_norm(x_ref))})
    dev_name = torch.cuda.get_device_name(dev) if sync else "CPU"
    write_results(
        "gpu_lstsq_quick" if args.quick else "gpu_lstsq", rows,
        title=f"Target 3: least squares on {dev_name} (float64)",
        notes=["target: >= 2x faster than torch.linalg.lstsq at equal accuracy on 10^6 x 1000",
               "rank-deficient case: the correct answer has rel_obj_excess ~ 0 and "
               "x_norm == min_norm_x_norm",
               f"torch.linalg.lstsq driver: default for {dev.type} "
               f"({'gels, QR without pivoting' if sync else 'gelsy'})"],
    )


if __name__ == "__main__":
    main()
