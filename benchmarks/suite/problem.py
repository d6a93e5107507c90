r"""One benchmark problem: data, loss, λ and the activation patterns every solver shares.

Every solver in the suite receives the same :class:`Problem`. The design matrix
``X`` already carries the hidden-bias column (SPEC §1: a constant-1 column, so the
hidden bias is regularized) and no solver fits an output bias, so that all of them —
convexnn, pyscnn, CVXPY, PyTorch and scikit-learn — solve literally the same program.

Two objectives are scored (``kind``):

- ``"relu"``: SPEC §1 for the returned ReLU network, through
  :func:`convexnn.objective.network_objective`;
- ``"gated"``: SPEC §3, the gated network
  :math:`f(x) = \sum_j 1[x^\top g_j \ge 0]\, (x^\top w_j)\, \alpha_j` with weight decay
  :math:`\frac\lambda2 \sum_j \|w_j\|^2 + \alpha_j^2`, whose minimum over the
  balancing of :math:`(w_j, \alpha_j)` is the group-lasso value
  :math:`\lambda \sum_j \|w_j \alpha_j\|` of the convex program.

Before scoring, every returned network is *rebalanced* (each neuron's
:math:`(w_j, \alpha_j) \to (s w_j, \alpha_j / s)` with :math:`s^2 = |\alpha_j| / \|w_j\|`),
which leaves the function unchanged and never increases the objective; this is applied
to all solvers alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Problem",
    "gated_lam_max",
    "gated_network_objective",
    "fold_hidden_bias",
    "make_gates",
    "prepare",
    "rebalance",
    "score",
    "test_metric",
]


@dataclass
class Problem:
    """A fully specified benchmark problem (train/test data already preprocessed)."""

    dataset: str
    kind: str  # "relu" | "gated"
    loss: str  # "squared" | "logistic" | "softmax"
    lam: float
    X: np.ndarray  # (n, d) with the bias column appended when ``bias_column``
    y: np.ndarray  # reals / ±1 / class indices (the loss's encoding)
    X_test: np.ndarray
    y_test: np.ndarray
    gates: np.ndarray  # (d, p): deduplicated Gaussian gates shared by every solver
    task: str = "regression"
    lam_label: str = ""
    n_classes: int = 1
    info: dict[str, Any] = field(default_factory=dict)
    #: the network may have an unregularized output bias (SPEC §1's optional ``b``); the
    #: last column of ``X`` is then the constant one (the hidden biases, regularized)
    output_bias: bool = False

    @property
    def X_without_bias_column(self) -> np.ndarray:
        """``X`` without its constant last column, for solvers that append it themselves
        (``fit_intercept=True``) and fit the output bias with it."""
        if not np.all(self.X[:, -1] == 1.0):
            raise ValueError(f"problem {self.key}: the last column of X is not constant")
        return np.ascontiguousarray(self.X[:, :-1])

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_patterns(self) -> int:
        return int(self.gates.shape[1])

    @property
    def key(self) -> str:
        return f"{self.dataset}|{self.kind}|{self.loss}|{self.lam:.3g}"

    def masks(self, X: np.ndarray | None = None) -> np.ndarray:
        """Activation patterns ``1[X g_i ≥ 0]`` as an ``(n, p)`` float array."""
        Z = (self.X if X is None else X) @ self.gates
        return (Z >= 0).astype(self.X.dtype)


def make_gates(X: np.ndarray, n_gates: int, seed: int) -> np.ndarray:
    """Gaussian gates ``g ~ N(0, I)`` with duplicate (and empty) patterns removed."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((X.shape[1], n_gates))
    D = (X @ G >= 0)
    keep = D.any(axis=0)
    G, D = G[:, keep], D[:, keep]
    _, first = np.unique(np.packbits(D, axis=0), axis=1, return_index=True)
    return np.ascontiguousarray(G[:, np.sort(first)])


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    ok = sd > 1e-12
    return (train[:, ok] - mu[ok]) / sd[ok], (test[:, ok] - mu[ok]) / sd[ok]


def prepare(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    *,
    kind: str,
    loss: str,
    lam: float | None = None,
    lam_fraction: float | None = None,
    n_gates: int = 100,
    max_n: int | None = None,
    test_size: float = 0.2,
    bias_column: bool = True,
    seed: int = 0,
    center_labels: bool = False,
    output_bias: bool = False,
) -> Problem:
    """Split, subsample, standardize, encode the targets and draw the shared gates.

    ``lam`` is absolute (SPEC §1 scaling); ``lam_fraction`` is relative to
    :func:`gated_lam_max` over the drawn patterns (exactly one of the two is given).
    Regression targets are standardized; binary labels become ±1; for a squared loss
    on a multiclass set the largest class is taken against the rest (±1);
    ``center_labels`` then subtracts the training mean of those ±1 labels (their signs are
    unchanged), so that an output bias gains little. ``output_bias`` (needs
    ``bias_column``) lets every solver that can fit an unregularized output bias do so,
    as scikit-learn's MLP always does.
    """
    if output_bias and not bias_column:
        raise ValueError("prepare: output_bias needs bias_column=True")
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n = X.shape[0]
    perm = rng.permutation(n)
    n_test = max(1, int(round(test_size * n)))
    n_train_max = n - n_test if max_n is None else min(max_n, n - n_test)
    te, tr = perm[:n_test], perm[n_test : n_test + n_train_max]
    if max_n is not None:
        te = te[: max(1, min(n_test, max_n // 4))]
    Xtr, Xte = _standardize(X[tr], X[te])
    classes = None
    if task == "regression":
        mu, sd = float(y[tr].mean()), float(y[tr].std()) or 1.0
        ytr, yte = (y[tr] - mu) / sd, (y[te] - mu) / sd
        n_classes = 1
    else:
        classes, yi = np.unique(y, return_inverse=True)
        n_classes = len(classes)
        if loss == "softmax":
            ytr, yte = yi[tr], yi[te]
        else:
            if n_classes == 2:
                pos = 1
            else:  # largest class against the rest
                pos = int(np.argmax(np.bincount(yi)))
                n_classes = 2
            ytr = np.where(yi[tr] == pos, 1.0, -1.0)
            yte = np.where(yi[te] == pos, 1.0, -1.0)
            if center_labels and loss == "squared":
                m = float(ytr.mean())
                ytr, yte = ytr - m, yte - m
    if bias_column:
        Xtr = np.hstack([Xtr, np.ones((Xtr.shape[0], 1))])
        Xte = np.hstack([Xte, np.ones((Xte.shape[0], 1))])
    gates = make_gates(Xtr, n_gates, seed)
    label = ""
    if lam is None:
        if lam_fraction is None:
            raise ValueError("prepare needs either lam or lam_fraction")
        if loss == "squared":
            lm = gated_lam_max(Xtr, ytr, gates)
        else:
            lm = gated_lam_max(Xtr, _dual_start(ytr, loss, n_classes), gates)
        lam = float(lam_fraction * lm)
        label = f"{lam_fraction:g}·λmax"
    else:
        label = f"{lam:g}"
    return Problem(
        dataset=name,
        kind=kind,
        loss=loss,
        lam=float(lam),
        X=np.ascontiguousarray(Xtr),
        y=np.ascontiguousarray(ytr),
        X_test=np.ascontiguousarray(Xte),
        y_test=np.ascontiguousarray(yte),
        gates=gates,
        task=task,
        lam_label=label,
        n_classes=n_classes,
        info={"classes": None if classes is None else list(map(str, classes))},
        output_bias=output_bias,
    )


def fold_hidden_bias(W1: np.ndarray, b1: np.ndarray, b2: np.ndarray
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A network fitted on ``X`` without its constant column (hidden biases ``b1``,
    output bias ``b2``) in the problem's layout: ``b1`` becomes the constant column's row
    of ``W1`` (the same function and the same SPEC §1 penalty); returns ``(W1 with that
    row, zero hidden intercepts)`` and ``[0, b2]`` as ``coefs``-style lists."""
    W1 = np.vstack([np.asarray(W1, dtype=np.float64), np.asarray(b1, dtype=np.float64)[None]])
    return [W1], [np.zeros(W1.shape[1]), np.asarray(b2, dtype=np.float64).reshape(-1)]


def _dual_start(y: np.ndarray, loss: str, n_classes: int) -> np.ndarray:
    """The residual ``−∇ℓ(0)`` (times n) at the zero network, for λ_max."""
    if loss == "logistic":
        return 0.5 * y
    Y = np.eye(n_classes)[y.astype(int)]
    return Y - 1.0 / n_classes


def gated_lam_max(X: np.ndarray, R: np.ndarray, gates: np.ndarray) -> float:
    r"""``max_i ‖(D_i X)ᵀ R‖ / n``: the smallest λ whose zero gated network is optimal.

    ``R = y`` for the squared loss (minus the gradient at zero, times n); it is also an
    upper bound for the ReLU program over the same patterns.
    """
    R2 = R.reshape(R.shape[0], -1)
    D = (X @ gates >= 0).astype(X.dtype)
    # (XᵀD_i R) for every i: shape (p, d, c)
    M = np.einsum("nd,np,nc->pdc", X, D, R2)
    return float(np.sqrt((M**2).sum(axis=(1, 2))).max() / X.shape[0])


def rebalance(
    coefs: list[np.ndarray], intercepts: list[np.ndarray] | None
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Rescale each neuron so that ``‖(w_j, b_j)‖ = ‖α_j‖`` (same function, lower decay)."""
    W1 = np.asarray(coefs[0], dtype=np.float64)
    W2 = np.asarray(coefs[1], dtype=np.float64)
    if W2.ndim == 1:
        W2 = W2[:, None]
    b1 = None if intercepts is None else np.asarray(intercepts[0], dtype=np.float64)
    in_norm2 = (W1**2).sum(axis=0) + (0.0 if b1 is None else b1**2)
    out_norm = np.sqrt((W2**2).sum(axis=1))
    in_norm = np.sqrt(in_norm2)
    ok = (in_norm > 0) & (out_norm > 0)
    s = np.ones_like(in_norm)
    s[ok] = np.sqrt(out_norm[ok] / in_norm[ok])
    W1n, W2n = W1 * s, W2 / s[:, None]
    if intercepts is None:
        return [W1n, W2n], None
    return [W1n, W2n], [b1 * s, np.asarray(intercepts[1], dtype=np.float64)]


def _gated_forward(
    X: np.ndarray, gates: np.ndarray, W1: np.ndarray, W2: np.ndarray
) -> np.ndarray:
    return (((X @ gates) >= 0) * (X @ W1)) @ W2


def _loss_value(out: np.ndarray, y: np.ndarray, loss: str) -> float:
    n = out.shape[0]
    if loss == "squared":
        return float(0.5 * ((out - y.reshape(n, -1)) ** 2).sum() / n)
    if loss == "logistic":
        return float(np.logaddexp(0.0, -y.reshape(n, -1) * out).sum() / n)
    if loss == "softmax":
        m = out.max(axis=1, keepdims=True)
        lse = (m[:, 0] + np.log(np.exp(out - m).sum(axis=1)))
        return float((lse - out[np.arange(n), y.astype(int)]).sum() / n)
    raise ValueError(f"unknown loss {loss!r}")


def gated_network_objective(
    gates: np.ndarray, coefs: list[np.ndarray], X: np.ndarray, y: np.ndarray, lam: float,
    loss: str,
) -> float:
    """SPEC §3 objective of a gated network ``(gates, W1 (d, m), W2 (m, c))``."""
    W1 = np.asarray(coefs[0], dtype=np.float64)
    W2 = np.asarray(coefs[1], dtype=np.float64)
    if W2.ndim == 1:
        W2 = W2[:, None]
    out = _gated_forward(X, gates, W1, W2)
    return _loss_value(out, y, loss) + 0.5 * lam * float((W1**2).sum() + (W2**2).sum())


def score(problem: Problem, coefs, intercepts, gates=None) -> float:
    """The objective of ``problem.kind`` at the returned (rebalanced) network."""
    coefs, intercepts = rebalance(coefs, intercepts if problem.kind == "relu" else None)
    if problem.kind == "gated":
        return gated_network_objective(gates, coefs, problem.X, problem.y, problem.lam,
                                       problem.loss)
    from convexnn.objective import network_objective

    return network_objective(coefs, intercepts, problem.X, problem.y, problem.lam, problem.loss)


def _predict(problem: Problem, X: np.ndarray, coefs, intercepts, gates=None) -> np.ndarray:
    W1 = np.asarray(coefs[0], dtype=np.float64)
    W2 = np.asarray(coefs[1], dtype=np.float64)
    if W2.ndim == 1:
        W2 = W2[:, None]
    if problem.kind == "gated":
        return _gated_forward(X, gates, W1, W2)
    H = X @ W1
    if intercepts is not None:
        H = H + np.asarray(intercepts[0])
    out = np.maximum(H, 0.0) @ W2
    if intercepts is not None:
        out = out + np.asarray(intercepts[1])
    return out


def test_metric(problem: Problem, coefs, intercepts, gates=None) -> tuple[str, float]:
    """``("r2", R²)`` for regression, ``("accuracy", acc)`` for classification (test set)."""
    out = _predict(problem, problem.X_test, coefs, intercepts, gates)
    y = problem.y_test
    if problem.task == "regression":
        resid = ((out[:, 0] - y) ** 2).sum()
        tot = ((y - y.mean()) ** 2).sum() or 1.0
        return "r2", float(1.0 - resid / tot)
    if problem.loss == "softmax":
        return "accuracy", float((out.argmax(axis=1) == y).mean())
    return "accuracy", float((np.sign(out[:, 0]) == np.sign(y)).mean())  # y may be centred
