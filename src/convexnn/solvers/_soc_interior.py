r"""A primal-dual interior-point method on the norm cones: gated programs (no ReLU cones).

The group-ℓ2 program in conic form,

.. math::

    \min_{W, t, b}\; L(\mathcal A W + \mathbf 1 b^\top) + \lambda\sum_j t_j
    \quad\text{s.t.}\quad x_j = (t_j, w_j) \in \mathcal Q = \{(t, w): \|w\|_2 \le t\},

has the dual cone variables :math:`s_j = (\sigma_j, v_j) \in \mathcal Q` with the
equations :math:`\sigma_j = \lambda` (stationarity in :math:`t_j`, kept exactly, so
:math:`\Delta\sigma = 0`), :math:`v_j = (\mathcal A^\top\nabla L)_j` (stationarity in
:math:`w_j`), :math:`\nabla_b L = 0`, and complementarity :math:`x_j \circ s_j = 0` in
the Jordan algebra of the cone (:math:`u\circ v = (u^\top v,\; u_0 v_1 + v_0 u_1)`).

Each step linearizes these with **Nesterov–Todd scaling** — the matrix :math:`W_j` with
:math:`W_j x_j = W_j^{-1}s_j = \ell_j` — and takes a **Mehrotra predictor-corrector**
step: an affine direction (target :math:`\mu = 0`), a centring weight
:math:`\sigma_c = (1 - \alpha_{\rm aff})^3`, then the combined direction with the
second-order correction :math:`(W\Delta x^{\rm aff})\circ(W^{-1}\Delta s^{\rm aff})`.
Both directions share one factorization. With :math:`P_j = W_j^{-2}` and
:math:`\Delta x_j + P_j\Delta s_j = \xi_j` the scaled complementarity row, eliminating
:math:`\Delta t` and :math:`\Delta v` leaves

.. math::

    \bigl(\mathcal A^\top H\mathcal A + \mathrm{blkdiag}_j [P_j]_{ww}^{-1}\bigr)\Delta W
    + \mathcal A^\top H\mathbf 1\,\Delta b = [P]_{ww}^{-1}\xi_w - (\mathcal A^\top\nabla L - v),

the system of :class:`convexnn.solvers._primal_dual._Newton` with
:math:`[P_j]_{ww} = \eta_j^{-2}(I + 2\bar w_{j1}\bar w_{j1}^\top)` (identity plus rank one,
so the Woodbury capacitance costs ``2 n² p`` flops). Where the barrier method of
:mod:`convexnn.solvers._primal_dual` re-centres for several damped steps after each
reduction of its barrier weight, this method moves the weight every step (typically
15–25 steps to 1e-8).

The loss may be any smooth convex loss (its Hessian is re-linearized every step); the
iterates are interior (``t_j > ‖w_j‖``), so the returned ``W`` is always feasible and
the dual residual :math:`\mathcal A^\top\nabla L - v` shrinks with the steps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch

from convexnn.certificates import _maximize_scale
from convexnn.solvers._apg import SolverResult
from convexnn.solvers._primal_dual import _Newton, finish, newton_cost, weighted_block_grams
from convexnn.solvers._problem import ConvexProblem

__all__ = ["soc_primal_dual"]

log = logging.getLogger(__name__)

#: fraction of the longest step to the cones' boundary that is taken
_STEP = 0.99
#: fraction of a warm start moved towards the ReLU cones' interior directions
_PUSH = 0.05
#: steps without a better certified gap after which the method stops (round-off)
_STALL = 4
#: iterative-refinement passes per Newton solve
_REFINE = 1


class _Scaling:
    r"""Nesterov–Todd scaling of ``B`` pairs ``x = (t, w)``, ``s = (σ, v)`` in ``int Q``.

    :math:`\bar x = x/\sqrt{x^\top Jx}`, :math:`\bar s = s/\sqrt{s^\top Js}`
    (:math:`J = \mathrm{diag}(1, -I)`), :math:`\gamma = \sqrt{(1 + \bar x^\top\bar s)/2}`,
    :math:`\bar w = (\bar s + J\bar x)/(2\gamma)` (so :math:`\bar w^\top J\bar w = 1`),
    :math:`\eta = (s^\top Js / x^\top Jx)^{1/4}` and :math:`W = \eta\,H(\bar w)` with the
    hyperbolic rotation :math:`H(u) = 2 vv^\top - J`, :math:`v = (u + e)/\sqrt{2(u_0+1)}`;
    :math:`H(\bar w)^{-1} = H(J\bar w)` and :math:`H(u)^2 = 2uu^\top - J`.
    """

    def __init__(self, t: torch.Tensor, w: torch.Tensor, sig: torch.Tensor,
                 v: torch.Tensor) -> None:
        xn = torch.sqrt((t - torch.linalg.vector_norm(w, dim=1)) * (
            t + torch.linalg.vector_norm(w, dim=1)))
        sn = torch.sqrt((sig - torch.linalg.vector_norm(v, dim=1)) * (
            sig + torch.linalg.vector_norm(v, dim=1)))
        dot = (t * sig + (w * v).sum(1)) / (xn * sn)
        gam = torch.sqrt(0.5 * (1.0 + dot))
        self.w0 = (sig / sn + t / xn) / (2 * gam)
        self.w1 = (v / sn[:, None] - w / xn[:, None]) / (2 * gam)[:, None]
        self.eta = torch.sqrt(sn / xn)
        self.lt, self.lw = self.apply(t, w)  # ℓ = W x

    def _rotate(self, u0: torch.Tensor, u1: torch.Tensor, inverse: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        # H(u) x = 2 v (vᵀx) − J x with v = (u + e)/√(2(u₀+1)); inverse: u = J w̄
        a0 = self.w0 + 1.0
        a1 = -self.w1 if inverse else self.w1
        k = (a0 * u0 + (a1 * u1).sum(1)) / a0  # 2 vᵀx · √(2(u₀+1))/… folded: 2(aᵀx)/(2a₀)
        return k * a0 - u0, k[:, None] * a1 + u1

    def apply(self, u0: torch.Tensor, u1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``W u`` per block."""
        r0, r1 = self._rotate(u0, u1, inverse=False)
        return self.eta * r0, self.eta[:, None] * r1

    def apply_inv(self, u0: torch.Tensor, u1: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """``W⁻¹ u`` per block."""
        r0, r1 = self._rotate(u0, u1, inverse=True)
        return r0 / self.eta, r1 / self.eta[:, None]

    def pww(self) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`[W^{-2}]_{ww} = a I + u u^\top`: returns ``(a (B,), u (B, d))``."""
        return self.eta ** -2, (math.sqrt(2.0) / self.eta)[:, None] * self.w1

    def pww_inv(self, r: torch.Tensor) -> torch.Tensor:
        r""":math:`[W^{-2}]_{ww}^{-1} r
        = \eta^2 (r - 2\bar w_1 \bar w_1^\top r/(1 + 2\|\bar w_1\|^2))`."""
        w1 = self.w1
        coef = 2 * (w1 * r).sum(1) / (1 + 2 * (w1 * w1).sum(1))
        return (self.eta ** 2)[:, None] * (r - coef[:, None] * w1)

    def pww_inv_matrix(self) -> torch.Tensor:
        """The blocks ``[W⁻²]_ww⁻¹`` as matrices (B, d, d), for the dense factorization."""
        B, d = self.w1.shape
        eye = torch.eye(d, dtype=self.w1.dtype, device=self.w1.device)
        coef = 2 / (1 + 2 * (self.w1 * self.w1).sum(1))
        M = eye[None] - coef[:, None, None] * self.w1[:, :, None] * self.w1[:, None, :]
        return (self.eta ** 2)[:, None, None] * M

    def ptw(self, v1: torch.Tensor) -> torch.Tensor:
        r""":math:`[W^{-2}]_{tw} v_1 = -2\eta^{-2}\bar w_0 \bar w_1^\top v_1`."""
        return -2 * self.w0 * (self.w1 * v1).sum(1) / self.eta ** 2


def _jordan(u0: torch.Tensor, u1: torch.Tensor, v0: torch.Tensor, v1: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Jordan product ``u ∘ v = (uᵀv, u₀v₁ + v₀u₁)`` per block."""
    return u0 * v0 + (u1 * v1).sum(1), u0[:, None] * v1 + v0[:, None] * u1


def _jordan_solve(l0: torch.Tensor, l1: torch.Tensor, u0: torch.Tensor, u1: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``ρ`` with ``ℓ ∘ ρ = u`` (ℓ in the interior of the cone)."""
    det = (l0 - torch.linalg.vector_norm(l1, dim=1)) * (l0 + torch.linalg.vector_norm(l1, dim=1))
    r0 = (l0 * u0 - (l1 * u1).sum(1)) / det
    r1 = (u1 - r0[:, None] * l1) / l0[:, None]
    return r0, r1


def _max_step(u0: torch.Tensor, u1: torch.Tensor, d0: torch.Tensor, d1: torch.Tensor
              ) -> float:
    r"""Largest α with :math:`u + \alpha d \in \mathcal Q` for every block (``inf`` if none
    binds): the smallest positive root of
    :math:`(u_0+\alpha d_0)^2 - \|u_1 + \alpha d_1\|^2`."""
    a = d0 * d0 - (d1 * d1).sum(1)
    b = u0 * d0 - (u1 * d1).sum(1)
    c = (u0 - torch.linalg.vector_norm(u1, dim=1)) * (u0 + torch.linalg.vector_norm(u1, dim=1))
    disc = (b * b - a * c).clamp_min(0)
    binds = (a < 0) | ((b < 0) & (b * b - a * c >= 0))
    if not bool(binds.any()):
        return math.inf
    roots = c[binds] / (-b[binds] + torch.sqrt(disc[binds])).clamp_min(1e-300)
    return float(roots.min())


def _ratio_step(u: torch.Tensor, du: torch.Tensor) -> float:
    """Largest α with ``u + α du ≥ 0`` (``u > 0``; ``inf`` if no entry decreases)."""
    neg = du < 0
    if not bool(neg.any()):
        return math.inf
    return float((-u[neg] / du[neg]).min())


class _System:
    r"""One step's linear system: the reduced Newton matrix (factored by ``newton``) and
    the elimination of ``Δt``, ``Δv`` and (ReLU) ``Δz``.

    With the ReLU cones :math:`r_j = S_j X w_j \ge 0` (``S_j = 2D_j - I``) and multipliers
    ``z``, complementarity :math:`r\circ z = \mu` linearizes to
    :math:`\Delta z = (\rho_z - z\circ S X\Delta w)/r`, which adds
    :math:`X^\top\mathrm{diag}(z/r)X` to each block and :math:`X^\top S(\rho_z/r)` to the
    right-hand side.
    """

    def __init__(self, X: torch.Tensor, SD: torch.Tensor, c: int, fb: bool, newton: _Newton,
                 sc: _Scaling, Hl: torch.Tensor, rw: torch.Tensor, rb: torch.Tensor,
                 cones: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> None:
        self.X, self.SDc, self.c, self.fb = X, SD[:, None, :], c, fb
        self.newton, self.sc, self.Hl, self.rw, self.rb = newton, sc, Hl, rw, rb
        self.B, self.d = rw.shape
        self.cones = cones  # (S (n, B), r (n, B), z (n, B)) or None

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.B * self.d
        db = x[k:] if self.fb else x.new_zeros(self.c)
        return x[:k].reshape(self.B, self.d), db

    def kapply(self, x: torch.Tensor) -> torch.Tensor:
        """The reduced Newton matrix times ``x`` (matrix-free, for iterative refinement)."""
        dW, db = self._split(x)
        n = self.X.shape[0]
        dP = self.X @ dW.T  # (n, B): X Δw_j
        dZ = (dP.reshape(n, self.c, -1) * self.SDc).sum(-1) + db
        HdZ = torch.einsum("nab,nb->na", self.Hl, dZ)
        coef = (HdZ[:, :, None] * self.SDc).reshape(n, self.B)
        if self.cones is not None:
            _, r, z = self.cones
            coef = coef + (z / r) * dP
        out = (coef.T @ self.X + self.sc.pww_inv(dW)).reshape(-1)
        return torch.cat([out, HdZ.sum(0)]) if self.fb else out

    def direction(self, xi_t: torch.Tensor, xi_w: torch.Tensor,
                  rho_z: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """``(Δt, ΔW, Δb, Δv, Δr, Δz)`` for the scaled complementarity rows
        ``Δx + PΔs = ξ`` (norm cones) and ``zΔr + rΔz = ρ_z`` (ReLU cones)."""
        sc = self.sc
        g = sc.pww_inv(xi_w) - self.rw
        if self.cones is not None:
            S, r, _ = self.cones
            g = g + (S * rho_z / r).T @ self.X
        g = g.reshape(-1)
        if self.fb:
            g = torch.cat([g, -self.rb])
        step = self.newton.solve(g)
        for _ in range(_REFINE):  # iterative refinement: the factorization loses accuracy
            # as the scaling spreads over many orders of magnitude near the end
            step = step + self.newton.solve(g - self.kapply(step))
        dW, db = self._split(step)
        dV = sc.pww_inv(xi_w - dW)
        dr = dz = None
        if self.cones is not None:
            S, r, z = self.cones
            dr = S * (self.X @ dW.T)
            dz = (rho_z - z * dr) / r
        return xi_t - sc.ptw(dV), dW, db, dV, dr, dz


def soc_primal_dual(
    problem: ConvexProblem,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    mu0: torch.Tensor | None = None,
    *,
    tol: float = 1e-8,
    max_iter: int = 100,
    step_callback: Callable[[dict], Any] | None = None,
) -> SolverResult:
    """Solve a group-ℓ2 program (gated, or ReLU with its cones) by the method above.

    Parameters
    ----------
    problem : ConvexProblem
        The program; ReLU programs (``problem.constrained``) need ``problem.gates``
        strictly inside their blocks' cones (the start is pushed along them).
    W0, b0 : tensor, optional
        Warm start (the epigraph variables start a margin above the block norms).
    mu0 : tensor, optional
        Cone multipliers of a previous solution (ReLU): a floor for the starting ones.
    tol : float
        Stop when the certified relative gap of the iterate is at most ``tol``: the dual
        point is the loss gradient (minus the cone multipliers' term, ReLU) scaled into
        the dual feasible set (:func:`convexnn.certificates._maximize_scale`).
    max_iter : int
        Newton steps (each: one factorization, two solves).
    step_callback : callable, optional
        Called after every step with ``{"newton_step", "primal", "gap_estimate",
        "barrier", "lower_bound"}``; ReLU solutions are then polished on their face
        (:func:`convexnn.solvers._primal_dual.finish`, phase ``"polish"``).

    Returns
    -------
    SolverResult
        ``extra``: ``mode`` (``"dense"``/``"woodbury"``), ``barrier_gap`` (the final
        complementarity gap), ``certified_gap`` (the relative gap certified for the
        returned iterate, before any polish), ``violation``, ``feas_tol``; ReLU: ``mu``
        (n, c, p) and the polish's entries.
    """
    op = problem.op
    X = op.X.double()
    n, d = X.shape
    c, p = op.c, op.p
    B = c * p
    SD = op.SD.double()
    SDc = SD[:, None, :]
    Y = problem.Y.double()
    lam = problem.lam
    loss = problem.loss
    fb = problem.fit_bias
    cons = problem.constrained
    dev, f64 = X.device, torch.float64
    S = Sf = None  # the cones' signs 2D_j − I (n, p) and per block (n, B): ReLU only
    if cons:
        S = 2 * op.D.double() - 1
        Sf = S.repeat(1, c)  # blocks in (c, p) order

    W = (torch.zeros(c, p, d, dtype=f64, device=dev) if W0 is None else W0.double().clone())
    b = torch.zeros(c, dtype=f64, device=dev)
    if fb and b0 is not None:
        b = b0.double().clone()
    if cons:
        assert S is not None
        if problem.gates is None:
            raise ValueError("soc_primal_dual needs interior directions for the ReLU cones")
        Gt = problem.gates.double()
        Gt = Gt / torch.linalg.vector_norm(Gt, dim=1, keepdim=True).clamp_min(1e-300)
        if not bool(((S * (X @ Gt.T)) > 0).all()):
            raise ValueError("some gates are not strictly inside their cones")
        wn = torch.linalg.vector_norm(W, dim=-1)
        scale = 1e-3 * (1.0 + (float(wn.max()) if W.numel() else 0.0))
        W = (1 - _PUSH) * W + scale * Gt[None]
    Wf = W.reshape(B, d)
    norms = torch.linalg.vector_norm(Wf, dim=1)

    def outputs(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (torch.einsum("nd,cpd->ncp", X, W) * SDc).sum(-1) + b

    Z = outputs(W, b)
    F0 = float(loss.value(Z, Y)) + lam * float(norms.sum())
    # start on the central path's scale: complementarity μ = |F| / degree on every cone
    # (t = ‖w‖ + μ/λ with v = 0, the dual cone's axis; ReLU rows z = μ / r)
    m = B + (n * B if cons else 0)  # the cones' degree: one per norm cone, one per row
    mu0_ = max(abs(F0), 1e-12) / m
    t = norms + mu0_ / lam
    sig = torch.full((B,), lam, dtype=f64, device=dev)
    V = torch.zeros(B, d, dtype=f64, device=dev)
    z = None
    if cons:
        z = mu0_ / (Sf * (X @ Wf.T))
        if mu0 is not None and W0 is not None:
            z = torch.maximum(z, mu0.double().reshape(n, B))
    gram: dict = {}
    it, converged, mode = 0, False, "dense"
    gap = float("nan")
    best: tuple = (math.inf, W, b, z, 0)
    interrupted = False
    try:
        while it < max_iter:
            P = X @ Wf.T  # (n, B)
            Z = (P.reshape(n, c, p) * SDc).sum(-1) + b
            Vg = loss.grad(Z, Y)
            G = (Vg[:, :, None] * SDc).reshape(n, B).T @ X
            F = float(loss.value(Z, Y)) + lam * float(torch.linalg.vector_norm(Wf, dim=1).sum())
            gap = float((t * sig).sum() + (Wf * V).sum())
            Gz = None
            if cons:
                assert z is not None
                r = Sf * P
                gap += float((r * z).sum())
                Gz = (Sf * z).T @ X  # Σ_i z_i s_i x_i per block
            Vc = loss.center(Vg, Y) if fb else Vg
            Gc = (Vc[:, :, None] * SDc).reshape(n, B).T @ X if fb else G
            if Gz is not None:
                Gc = Gc - Gz
            nrm = float(torch.linalg.vector_norm(Gc, dim=1).max()) if B else 0.0
            _, lb = _maximize_scale(loss, Vc, Y, lam / nrm if nrm > 0 else 1e12)
            rel = (F - lb) / max(abs(F), 1e-12)  # the certificate of this iterate
            if rel < best[0]:
                best = (rel, W, b, z, it)
            if it and step_callback is not None:
                step_callback({"newton_step": it, "primal": F, "gap_estimate": gap,
                               "barrier": gap / max(m, 1), "lower_bound": lb})
            log.debug("soc %d F=%.12g gap=%.2e rel=%.2e", it, F, gap, rel)
            if rel <= tol:
                converged = True
                break
            if it - best[4] >= _STALL:  # round-off has taken over: keep the best iterate
                break
            it += 1
            Hl = loss.hessian(Z, Y)
            rw = G - V if Gz is None else G - Gz - V  # dual residual (B, d)
            rb = Vg.sum(0)  # ∇_b L
            sc = _Scaling(t, Wf, sig, V)
            cones = None
            try:
                Bd = sc.pww_inv_matrix()
                if cons:
                    assert z is not None
                    cones = (Sf, r, z)
                    Bd = Bd + weighted_block_grams(X, z / r, gram)
                newton = _Newton(problem, X, SD, Hl, Bd, gram, None if cons else (*sc.pww(), 1.0))
            except RuntimeError:  # the scaling lost positive definiteness (round-off at the end)
                log.debug("soc %d: factorization failed, stopping", it)
                break
            mode = newton.mode
            system = _System(X, SD, c, fb, newton, sc, Hl, rw, rb, cones)
            zero = torch.zeros_like(t)
            mu = gap / m
            try:
                # predictor: ξ = −x, ρ_z = −r∘z
                dt_a, dW_a, _, dV_a, dr_a, dz_a = system.direction(
                    -t, -Wf, -(r * z) if cons else None)
                a_aff = min(1.0, _max_step(t, Wf, dt_a, dW_a), _max_step(sig, V, zero, dV_a))
                if cons:
                    a_aff = min(a_aff, _ratio_step(r, dr_a), _ratio_step(z, dz_a))
                sig_c = (1.0 - a_aff) ** 3
                # corrector: ξ = W⁻¹ (ℓ⁻¹ ∘ (σμe − ℓ∘ℓ − (WΔx)∘(W⁻¹Δs))), ρ_z = σμ − r∘z − Δr∘Δz
                x0, x1 = sc.apply(dt_a, dW_a)
                s0, s1 = sc.apply_inv(zero, dV_a)
                c0, c1 = _jordan(x0, x1, s0, s1)
                l0, l1 = sc.lt, sc.lw
                q0, q1 = _jordan(l0, l1, l0, l1)
                r0, r1 = _jordan_solve(l0, l1, sig_c * mu - q0 - c0, -q1 - c1)
                xi_t, xi_w = sc.apply_inv(r0, r1)
                rho_z = sig_c * mu - r * z - dr_a * dz_a if cons else None
                dt, dW, db, dV, dr, dz = system.direction(xi_t, xi_w, rho_z)
            except RuntimeError:  # a singular system from round-off at the end: keep the best
                log.debug("soc %d: Newton solve failed, stopping", it)
                break
            if not bool(torch.isfinite(dW).all() and torch.isfinite(dV).all()):
                break
            alpha = min(1.0, _STEP * _max_step(t, Wf, dt, dW))
            alpha_d = min(1.0, _STEP * _max_step(sig, V, zero, dV))  # primal and dual steps
            if cons:
                alpha = min(alpha, _STEP * _ratio_step(r, dr))
                alpha_d = min(alpha_d, _STEP * _ratio_step(z, dz))
                z = z + alpha_d * dz
            t = t + alpha * dt
            Wf = Wf + alpha * dW
            V = V + alpha_d * dV
            b = b + alpha * db
            W = Wf.reshape(c, p, d)
            log.debug("soc %d alpha_aff=%.3f sigma=%.2e alpha=%.3f/%.3f", it, a_aff, sig_c, alpha,
                      alpha_d)
    except KeyboardInterrupt:  # Ctrl-C: keep the best iterate so far (all are interior)
        interrupted = True
    best_rel = best[0]
    if not converged:
        _, W, b, z, _ = best
    zz = z.reshape(n, c, p) if z is not None else None
    res = finish(problem, X, SD, S, W, b, zz, it, converged, step_callback,
                 ipm_flops=it * newton_cost(n, c, p, d, gated=not cons)[0], mode=mode,
                 barrier_gap=gap, certified_gap=best_rel,
                 polish_if=(lambda *a: False) if interrupted else None)
    res.interrupted = res.interrupted or interrupted
    return res
