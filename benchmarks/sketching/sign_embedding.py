"""Target 5: one-bit embeddings sign(Sz): the Hamming fraction tracks angle/π within ε
for m ≈ ε⁻² log k (table + plot ``benchmarks/results/sketching_sign_embedding.png``).

For k random points (with planted near-duplicates so small angles are present) and a
range of ε, the code length is ``m = ⌈2 ε⁻² ln k⌉``; the table reports the largest
and mean error ``|d_H/m − θ/π|`` over all k(k−1)/2 pairs.

    PYTHONPATH=src python3 benchmarks/sketching/sign_embedding.py --quick
    PYTHONPATH=src python3 benchmarks/sketching/sign_embedding.py
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from _common import RESULTS, write_results

from convexnn.sketching import hamming_fraction, sign_embedding


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--dim", type=int, default=256)
    args = ap.parse_args()
    k = args.k or (60 if args.quick else 300)
    eps_list = [0.2, 0.1, 0.05] if args.quick else [0.2, 0.1, 0.05, 0.03, 0.02]
    rng = np.random.default_rng(0)
    z = rng.standard_normal((k, args.dim))
    z[k // 2 :] = z[: k - k // 2] + rng.uniform(0.05, 1.5, (k - k // 2, 1)) * rng.standard_normal(
        (k - k // 2, args.dim))  # near-duplicates: angles from ~0.05 to ~1.2 rad
    i, j = np.triu_indices(k, 1)
    cos = np.sum(z[i] * z[j], 1) / np.linalg.norm(z[i], axis=1) / np.linalg.norm(z[j], axis=1)
    theta = np.arccos(np.clip(cos, -1, 1))
    rows, frac_by_eps = [], {}
    for eps in eps_list:
        m = math.ceil(2 * math.log(k) / eps**2)
        codes = sign_embedding(z, m, random_state=1)
        frac = hamming_fraction(codes[i], codes[j])
        err = np.abs(frac - theta / math.pi)
        frac_by_eps[eps] = (m, frac)
        rows.append({"k": k, "eps": eps, "m": m, "pairs": len(i), "max_err": float(err.max()),
                     "mean_err": float(err.mean()), "within_eps": bool(err.max() <= eps),
                     "frac_pairs_within_eps": float((err <= eps).mean())})
    write_results(
        "sign_embedding_quick" if args.quick else "sign_embedding", rows,
        title="Target 5: Hamming fraction of sign(Sz) vs angle/pi, m = ceil(2 eps^-2 ln k)",
        notes=["Gaussian S; error = |d_H/m - theta/pi| over all pairs of k points"],
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    for eps in (eps_list[0], eps_list[-1]):
        m, frac = frac_by_eps[eps]
        ax.scatter(theta / math.pi, frac, s=3, alpha=0.35, label=f"m = {m} (ε = {eps})")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="angle / π")
    ax.set_xlabel("angle(z, z') / π")
    ax.set_ylabel("Hamming fraction of sign(Sz), sign(Sz')")
    ax.set_title(f"{k} points in R^{args.dim}: {len(i):,} pairs")
    ax.legend(markerscale=4, fontsize=8)
    ax = axes[1]
    ms = [r["m"] for r in rows]
    ax.loglog(ms, [r["max_err"] for r in rows], "o-", label="max error over pairs")
    ax.loglog(ms, [r["mean_err"] for r in rows], "s-", label="mean error")
    ax.loglog(ms, [r["eps"] for r in rows], "k--", label="ε with m = 2 ε⁻² ln k")
    ax.set_xlabel("code length m (bits)")
    ax.set_ylabel("|d_H/m − angle/π|")
    ax.set_title("error vs m")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = RESULTS / ("sketching_sign_embedding_quick.png" if args.quick
                     else "sketching_sign_embedding.png")
    fig.savefig(out, dpi=120)
    print("plot:", out)


if __name__ == "__main__":
    main()
