"""Shared machinery of the four estimators (validation, fitting, export, state)."""

from __future__ import annotations

import json
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from convexnn.certificates import Certificate
from convexnn.losses import Loss
from convexnn.patterns import PatternSet, patterns_from_gates
from convexnn.torch_modules import GatedReLUNetwork, relu_network
from convexnn.training import fit_convex_network
from convexnn.utils import make_generator, resolve_device, resolve_dtype, to_tensor

__all__ = ["BaseConvexNetwork"]


class BaseConvexNetwork(BaseEstimator):
    """Base of the convex-network estimators; see the public subclasses."""

    _relu: bool = True

    _parameter_constraints: dict = {
        "lam": [Interval(Real, 0, None, closed="neither")],
        "patterns": [StrOptions({"exact"}), Interval(Integral, 1, None, closed="left"),
                     "array-like"],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "grow": ["boolean", StrOptions({"thorough"})],
        "seed_runs": [Interval(Integral, 0, None, closed="left")],
        "seed_epochs": [Interval(Integral, 1, None, closed="left")],
        "seed_optimizer": [StrOptions({"adam", "lbfgs"})],
        "seed_width": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_patterns": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, None, torch.device],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        lam: float = 1e-3,
        *,
        patterns: Any = 100,
        fit_intercept: bool = True,
        tol: float = 1e-6,
        max_iter: int = 10_000,
        grow: bool | str = True,
        seed_runs: int = 3,
        seed_epochs: int = 3000,
        seed_optimizer: str = "adam",
        seed_width: int | str = "auto",
        max_patterns: int = 20_000,
        warm_start: bool = False,
        random_state: Any = None,
        device: Any = None,
        dtype: str | None = None,
        verbose: int = 0,
    ) -> None:
        self.lam = lam
        self.patterns = patterns
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.grow = grow
        self.seed_runs = seed_runs
        self.seed_epochs = seed_epochs
        self.seed_optimizer = seed_optimizer
        self.seed_width = seed_width
        self.max_patterns = max_patterns
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    # ----------------------------------------------------------------- subclass hooks
    def _loss(self) -> Loss:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode_y(self, y: np.ndarray, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # ----------------------------------------------------------------- fitting
    def _validate_patterns(self, n_features: int) -> Any:
        pat = self.patterns
        if isinstance(pat, str) or isinstance(pat, Integral):
            return pat if isinstance(pat, str) else int(pat)
        if isinstance(pat, torch.Tensor):
            pat = pat.detach().cpu().numpy()
        G = np.asarray(pat, dtype=np.float64)
        ok_cols = {n_features, n_features + 1} if self.fit_intercept else {n_features}
        if G.ndim != 2 or G.shape[1] not in ok_cols or G.shape[0] < 1:
            raise ValueError(
                f"The 'patterns' parameter of {type(self).__name__} given as an array must "
                f"have shape (n_gates, {n_features})"
                + (f" or (n_gates, {n_features + 1})" if self.fit_intercept else "")
                + f". Got an array of shape {G.shape} instead."
            )
        if not np.isfinite(G).all():
            raise ValueError(
                f"The 'patterns' parameter of {type(self).__name__} contains NaN or infinity."
            )
        return G

    def _prepare(self, X: Any, y: Any, *, reset: bool, multi_output: bool,
                 y_numeric: bool) -> tuple[np.ndarray, np.ndarray, torch.device, torch.dtype]:
        device = resolve_device(self.device, X, owner=type(self).__name__)
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        X, y = validate_data(self, X, y, reset=reset, multi_output=multi_output,
                             y_numeric=y_numeric, dtype=[np.float64, np.float32],
                             ensure_min_samples=2)
        # float16 input arrives here as float64 (validate_data), float32 stays float32
        dtype = resolve_dtype(self.dtype, X, owner=type(self).__name__)
        return X, y, device, dtype

    def _fit(self, X: np.ndarray, Y: torch.Tensor, device: torch.device, dtype: torch.dtype,
             callback: Any) -> None:
        pat = self._validate_patterns(X.shape[1])
        if self.grow == "thorough" and (not self._relu or Y.shape[1] > 1):
            what = "gated ReLU" if not self._relu else f"{Y.shape[1]}-output ReLU"
            warnings.warn(f"grow='thorough' applies to ReLU networks with one output; this "
                          f"{what} fit grows its patterns as with grow=True.", UserWarning,
                          stacklevel=3)
        Xt = to_tensor(X, dtype=dtype, device=device)
        gen = make_generator(self.random_state, device)
        warm = None
        if self.warm_start and hasattr(self, "_convex_W"):
            W = to_tensor(self._convex_W, dtype=dtype, device=device)
            b = to_tensor(self._convex_b, dtype=dtype, device=device)
            G = to_tensor(self._convex_gates, dtype=dtype, device=device)
            if W.shape[0] == Y.shape[1] and G.shape[1] == X.shape[1] + int(self.fit_intercept):
                X_aug = torch.cat([Xt, torch.ones_like(Xt[:, :1])], 1) if self.fit_intercept \
                    else Xt
                ps = patterns_from_gates(X_aug, G, source="warm", dedup=False)
                ps = PatternSet(ps.gates, ps.masks, bool(self._convex_exact), ps.source)
                warm = (W, b, ps)
        if callback is None and self.verbose:
            callback = _printer(type(self).__name__, int(self.verbose))
        res = fit_convex_network(
            Xt, Y, self._loss(), float(self.lam), relu=self._relu, patterns=pat,
            fit_intercept=self.fit_intercept, tol=float(self.tol), max_iter=int(self.max_iter),
            generator=gen, grow=False if isinstance(pat, np.ndarray) else (
                "thorough" if self.grow == "thorough" else bool(self.grow)),
            max_patterns=int(self.max_patterns), warm_start=warm, callback=callback,
            seed_epochs=int(self.seed_epochs) if (
                self.grow and self.seed_runs > 0 and not isinstance(pat, (str, np.ndarray))
            ) else 0,
            seed_width=self.seed_width if self.seed_width == "auto" else int(self.seed_width),
            seed_runs=int(self.seed_runs), seed_optimizer=str(self.seed_optimizer),
        )
        net = res.network
        self.coefs_ = [net.W1.detach().cpu().double().numpy(),
                       net.W2.detach().cpu().double().numpy()]
        self.intercepts_ = [net.b1.detach().cpu().double().numpy(),
                            net.b2.detach().cpu().double().numpy()]
        if not self._relu:
            self.gates_ = net.gates.detach().cpu().double().numpy()
        self.objective_ = float(res.objective)
        self.certificate_ = res.certificate
        self.n_iter_ = int(res.n_iter)
        self.n_neurons_ = int(net.n_neurons)
        self.n_patterns_ = int(res.patterns.n_patterns)
        self.history_ = res.history
        self.converged_ = bool(res.converged)
        self._convex_W = res.W.detach().cpu().double().numpy()
        self._convex_b = res.b.detach().cpu().double().numpy()
        self._convex_gates = res.patterns.gates.detach().cpu().double().numpy()
        self._convex_exact = bool(res.patterns.exact)
        if self.verbose:
            import logging

            logging.getLogger("convexnn").info("%s: %s", type(self).__name__, res.certificate)

    # ----------------------------------------------------------------- prediction
    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        X = np.asarray(X, dtype=np.float64)
        W1, W2 = self.coefs_
        b1, b2 = self.intercepts_
        pre = X @ W1 + b1
        if self._relu:
            H = np.maximum(pre, 0.0)
        else:
            Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X
            H = (Xa @ self.gates_.T >= 0) * pre
        return H @ W2 + b2

    def to_torch(self) -> torch.nn.Module:
        """A ``torch.nn.Module`` computing the same outputs as the fitted network
        (regressor: ``predict``; classifier: ``decision_function``), in float64."""
        check_is_fitted(self, "coefs_")
        W1, W2 = self.coefs_
        b1, b2 = self.intercepts_
        if self._relu:
            return relu_network(W1, b1, W2, b2)
        return GatedReLUNetwork(W1, b1, W2, b2, self.gates_)

    # ----------------------------------------------------------------- persistence hooks
    def _get_fitted_state(self) -> dict[str, Any]:
        """Arrays and scalars that define the fitted model (for :mod:`convexnn.persistence`)."""
        check_is_fitted(self, "coefs_")
        state: dict[str, Any] = {
            "W1": self.coefs_[0], "W2": self.coefs_[1],
            "b1": self.intercepts_[0], "b2": self.intercepts_[1],
            "objective_": self.objective_, "n_iter_": self.n_iter_,
            "n_neurons_": self.n_neurons_, "n_patterns_": self.n_patterns_,
            "n_features_in_": self.n_features_in_, "converged_": self.converged_,
            "certificate_": json.dumps(self.certificate_.to_dict()),
            "convex_W": self._convex_W, "convex_b": self._convex_b,
            "convex_gates": self._convex_gates, "convex_exact": self._convex_exact,
        }
        if not self._relu:
            state["gates_"] = self.gates_
        if hasattr(self, "classes_"):
            state["classes_"] = self.classes_
        if hasattr(self, "n_outputs_"):
            state["n_outputs_"] = self.n_outputs_
        return state

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_get_fitted_state`."""
        self.coefs_ = [np.asarray(state["W1"]), np.asarray(state["W2"])]
        self.intercepts_ = [np.asarray(state["b1"]), np.asarray(state["b2"])]
        self.objective_ = float(state["objective_"])
        self.n_iter_ = int(state["n_iter_"])
        self.n_neurons_ = int(state["n_neurons_"])
        self.n_patterns_ = int(state["n_patterns_"])
        self.n_features_in_ = int(state["n_features_in_"])
        self.converged_ = bool(state["converged_"])
        self.certificate_ = Certificate(**json.loads(str(state["certificate_"])))
        self._convex_W = np.asarray(state["convex_W"])
        self._convex_b = np.asarray(state["convex_b"])
        self._convex_gates = np.asarray(state["convex_gates"])
        self._convex_exact = bool(state["convex_exact"])
        self.history_ = []
        if "gates_" in state:
            self.gates_ = np.asarray(state["gates_"])
        if "classes_" in state:
            self.classes_ = np.asarray(state["classes_"])
        if "n_outputs_" in state:
            self.n_outputs_ = int(state["n_outputs_"])


def _printer(name: str, level: int):
    """The ``verbose`` progress lines: one per phase (level 1), and per Newton step or
    per 100 first-order iterations inside a solve (level 2)."""
    import sys

    def show(info: dict[str, Any]) -> None:
        phase = info.get("phase", "")
        if phase in ("newton", "fista") and level < 2:
            return
        parts = [f"{name} [{phase} {info.get('iteration', '')}]",
                 f"objective {info.get('objective', float('nan')):.8g}"]
        lb = info.get("lower_bound", float("nan"))
        if lb == lb:  # not NaN
            parts.append(f"lower bound {lb:.8g}")
        parts += [f"{info.get('n_patterns', '?')} patterns", f"{info.get('time', 0.0):.1f} s"]
        print(", ".join(parts), file=sys.stderr, flush=True)

    return show
