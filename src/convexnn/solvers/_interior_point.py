r"""A barrier (interior-point) method for small programs: high accuracy in few steps.

For the restricted programs of a working set (a few dozen blocks), Newton's method on
the log-barrier problem reaches the accuracy of a conic solver in tens of steps:

.. math::

    \min_{W, t, b}\; \tau\Big(L(\mathcal A W + \mathbf 1 b^\top) + \lambda \sum_j t_j\Big)
    - \sum_j \log\big(t_j^2 - \|w_j\|^2\big)
    - \sum_{j, k} \log\big((2D_j - I)_{kk}\, x_k^\top w_j\big)

(the last sum only for the ReLU program), with τ multiplied by ``growth`` after each
centering until the barrier's duality-gap bound ``m / τ`` is below the asked accuracy.
Each Newton system is dense, of size ``c p (d + 1) + c``: use it when that is small.
"""

from __future__ import annotations

import math

import torch

from convexnn.solvers._apg import SolverResult
from convexnn.solvers._problem import ConvexProblem

__all__ = ["interior_point", "ipm_size"]


def ipm_size(problem: ConvexProblem) -> int:
    """Number of unknowns of the Newton systems for ``problem``."""
    op = problem.op
    return op.c * op.p * (op.X.shape[1] + 1) + (op.c if problem.fit_bias else 0)


def _loss_hessian(name: str, Zb: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Per-sample Hessian of the loss w.r.t. the outputs, shape (n, c, c), with the 1/n."""
    n, c = Zb.shape
    if name == "squared":
        return torch.eye(c, dtype=Zb.dtype, device=Zb.device).expand(n, c, c) / n
    if name == "logistic":
        s = torch.sigmoid(Zb * Y)
        return (s * (1 - s))[:, :, None] / n
    P = torch.softmax(Zb, dim=1)
    return (torch.diag_embed(P) - P[:, :, None] * P[:, None, :]) / n


def interior_point(
    problem: ConvexProblem,
    W0: torch.Tensor | None = None,
    b0: torch.Tensor | None = None,
    mu0: torch.Tensor | None = None,
    *,
    tol: float = 1e-8,
    max_iter: int = 500,
    growth: float = 20.0,
    interior: torch.Tensor | None = None,
) -> SolverResult:
    if interior is None:
        interior = problem.gates
    """Solve a small program by a barrier method (computed in float64).

    ``interior`` (p, d): a strictly feasible direction per block for the ReLU cones (the
    gates); required when ``problem.constrained``. ``tol`` bounds the *relative*
    suboptimality through the barrier gap ``m/τ``.
    """
    op = problem.op
    dt_out = op.X.dtype
    X = op.X.double()
    n, d = X.shape
    c, p = op.c, op.p
    D = op.D.double()
    sign = op.sign.double()
    S = 2 * D - 1  # (n, p)
    Y = problem.Y.double()
    lam = problem.lam
    loss = problem.loss
    fb = problem.fit_bias
    B = c * p
    # Jacobian blocks: J[:, j, :] = σ_j D_j X   (n, p, d)
    J = (D * sign)[:, :, None] * X[:, None, :]
    Jf = J.reshape(n, p * d)

    dev = X.device
    W = torch.zeros(c, p, d, dtype=torch.float64, device=dev) if W0 is None else W0.double().clone()
    b = torch.zeros(c, dtype=torch.float64, device=dev) if b0 is None else b0.double().clone()
    if problem.constrained:
        if interior is None:
            raise ValueError("interior_point needs interior directions for the ReLU cones")
        G = interior.double()
        G = G / torch.linalg.vector_norm(G, dim=1, keepdim=True).clamp_min(1e-300)
        rG = S * (X @ G.T)  # (n, p)
        ok = (rG > 0).all(dim=0)
        if not bool(ok.all()):
            raise ValueError("some gates are not strictly inside their cones")
        scale = 1e-3 * (1 + float(torch.linalg.vector_norm(W, dim=-1).max()) if W.numel() else 1)
        W = 0.9 * W + scale * G[None, :, :]
        r = S[:, None, :] * torch.einsum("nd,cpd->ncp", X, W)
        if not bool((r > 0).all()):
            W = scale * G[None, :, :].expand(c, p, d).clone()
    t = torch.linalg.vector_norm(W, dim=-1) * 1.1 + 1e-3 + 0.1 * (
        torch.linalg.vector_norm(W, dim=-1).max() if W.numel() else 0
    )

    def outputs(W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return Jf @ W.reshape(c, p * d).T + b

    def cone_values(W: torch.Tensor) -> torch.Tensor:
        return S[:, None, :] * (X @ W.reshape(c * p, d).T).reshape(n, c, p)

    def max_step(W: torch.Tensor, t: torch.Tensor, dW: torch.Tensor, dt: torch.Tensor) -> float:
        """Largest step keeping every barrier argument positive."""
        smax = math.inf
        a = dt**2 - (dW**2).sum(-1)
        bq = 2 * (t * dt - (W * dW).sum(-1))
        c0 = t**2 - (W**2).sum(-1)
        # smallest positive root of a s² + bq s + c0 (c0 > 0)
        disc = bq**2 - 4 * a * c0
        sq = torch.sqrt(torch.clamp(disc, min=0))
        for root in ((-bq - sq) / (2 * a), (-bq + sq) / (2 * a)):
            ok = (disc >= 0) & (a != 0) & (root > 0)
            if bool(ok.any()):
                smax = min(smax, float(root[ok].min()))
        lin = (a == 0) & (bq < 0)
        if bool(lin.any()):
            smax = min(smax, float((-c0[lin] / bq[lin]).min()))
        neg = dt < 0
        if bool(neg.any()):
            smax = min(smax, float((-t[neg] / dt[neg]).min()))
        if problem.constrained:
            r = cone_values(W)
            dr = cone_values(dW)
            neg = dr < 0
            if bool(neg.any()):
                smax = min(smax, float((-r[neg] / dr[neg]).min()))
        return smax

    def barrier_ok(W: torch.Tensor, t: torch.Tensor) -> bool:
        if not bool((t > 0).all()) or not bool((t**2 - (W**2).sum(-1) > 0).all()):
            return False
        if problem.constrained:
            return bool((cone_values(W) > 0).all())
        return True

    def merit(W: torch.Tensor, t: torch.Tensor, b: torch.Tensor, tau: float) -> float:
        Z = outputs(W, b)
        f = float(loss.value(Z, Y)) + lam * float(t.sum())
        phi = -float(torch.log(t**2 - (W**2).sum(-1)).sum())
        if problem.constrained:
            phi -= float(torch.log(cone_values(W)).sum())
        return tau * f + phi

    m = 2 * B + (n * B if problem.constrained else 0)
    f0 = float(loss.value(outputs(W, b), Y)) + lam * float(t.sum())
    tau = max(1.0, m / max(abs(f0), 1e-8))
    nv = B * d + B + (c if fb else 0)
    it = 0
    converged = False
    gram: torch.Tensor | None = None
    while True:
        # --- centering by Newton's method
        for _ in range(50):
            it += 1
            Z = outputs(W, b)
            V = loss.grad(Z, Y)  # (n, c)
            H = _loss_hessian(loss.name, Z, Y)  # (n, c, c)
            # gradient
            gW = tau * (V.T @ Jf).reshape(c, p, d)
            q = t**2 - (W**2).sum(-1)  # (c, p)
            gW = gW + 2 * W / q[:, :, None]
            gt = tau * lam * torch.ones_like(t) - 2 * t / q
            gb = tau * V.sum(0)
            # Hessian: loss part
            if loss.name == "squared":  # constant Hessian: Gram matrix computed once
                if gram is None:
                    gram = Jf.T @ Jf / n
                Hww = torch.zeros(c, p * d, c, p * d, dtype=torch.float64, device=dev)
                for a in range(c):
                    Hww[a, :, a, :] = tau * gram
            else:
                Hww = torch.zeros(c, p * d, c, p * d, dtype=torch.float64, device=dev)
                for a in range(c):
                    for e in range(c):
                        h = H[:, a, e]
                        if bool((h != 0).any()):
                            Hww[a, :, e, :] = tau * (Jf * h[:, None]).T @ Jf
            Hww = Hww.reshape(c * p * d, c * p * d)
            # SOC barrier part, per block: ∇² of -log(t² - ‖w‖²)
            Wf = W.reshape(B, d)
            qf = q.reshape(B)
            tf = t.reshape(B)
            blk = (2 / qf)[:, None, None] * torch.eye(d, dtype=torch.float64, device=dev) + (
                4 / qf**2
            )[:, None, None] * Wf[:, :, None] * Wf[:, None, :]
            Hwt = -(4 * tf / qf**2)[:, None] * Wf  # (B, d)
            Htt = -2 / qf + 4 * tf**2 / qf**2  # (B,)
            if problem.constrained:
                r = cone_values(W)  # (n, c, p)
                inv = 1.0 / r
                gW = gW - ((inv * S[:, None, :]).reshape(n, B).T @ X).reshape(c, p, d)
                w2 = (inv**2).reshape(n, B)
                blk = blk + torch.matmul((w2.T[:, :, None] * X[None]).transpose(1, 2), X)
            idx = torch.arange(B, device=dev)
            Hw = Hww.reshape(B, d, B, d)
            Hw[idx, :, idx, :] += blk
            Hww = Hw.reshape(B * d, B * d)
            K = torch.zeros(nv, nv, dtype=torch.float64, device=dev)
            K[: B * d, : B * d] = Hww
            # w–t coupling
            rows = (idx[:, None] * d + torch.arange(d, device=dev)[None, :]).reshape(-1)
            cols = (B * d + idx[:, None]).expand(B, d).reshape(-1)
            K[rows, cols] = Hwt.reshape(-1)
            K[cols, rows] = Hwt.reshape(-1)
            K[B * d + idx, B * d + idx] = Htt
            g = torch.cat([gW.reshape(-1), gt.reshape(-1)])
            if fb:
                # b couples with W through the loss only
                Hwb = tau * (Jf.T @ H.reshape(n, c * c)).reshape(p * d, c, c).permute(
                    1, 0, 2).reshape(c * p * d, c)
                Hbb = tau * H.sum(0)
                K[: B * d, B * d + B :] = Hwb
                K[B * d + B :, : B * d] = Hwb.T
                K[B * d + B :, B * d + B :] = Hbb
                g = torch.cat([g, gb])
            K = 0.5 * (K + K.T)
            try:
                ridge = 1e-14 * float(K.diagonal().abs().max())
                eye = torch.eye(nv, dtype=torch.float64, device=dev)
                Lc = torch.linalg.cholesky(K + ridge * eye)
                step = -torch.cholesky_solve(g[:, None], Lc)[:, 0]
            except RuntimeError:
                step = -torch.linalg.lstsq(K, g[:, None]).solution[:, 0]
            dec2 = float(-(g * step).sum())
            dW = step[: B * d].reshape(c, p, d)
            dtv = step[B * d : B * d + B].reshape(c, p)
            dbv = step[B * d + B :] if fb else torch.zeros_like(b)
            # backtracking: stay strictly feasible, then Armijo
            s = min(1.0, 0.99 * max_step(W, t, dW, dtv))
            F0 = merit(W, t, b, tau)
            while s > 1e-12:
                Wn, tn, bn = W + s * dW, t + s * dtv, b + s * dbv
                if barrier_ok(Wn, tn) and merit(Wn, tn, bn, tau) <= F0 - 0.25 * s * dec2:
                    break
                s *= 0.5
            if s <= 1e-12:
                break
            W, t, b = Wn, tn, bn
            if dec2 / 2 <= 1e-9 or it >= max_iter:
                break
        fval = float(loss.value(outputs(W, b), Y)) + lam * float(t.sum())
        if m / tau <= tol * max(abs(fval), 1e-8) or it >= max_iter:
            converged = m / tau <= tol * max(abs(fval), 1e-8)
            break
        tau *= growth
    # the barrier keeps t_j slightly above ‖w_j‖; the returned W is what counts
    mu = None
    if problem.constrained:
        # multipliers of the linear constraints at the last barrier point: μ = 1/(τ r)
        mu = 1.0 / (tau * cone_values(W))
    # the barrier keeps every block slightly non-zero: blocks at the barrier's scale are
    # zero in the limit (their dual constraint is inactive); drop them (zero is feasible)
    norms = torch.linalg.vector_norm(W, dim=-1)
    tiny = norms <= 1e-9 * max(1.0, float(norms.max()) if norms.numel() else 1.0)
    W = torch.where(tiny[:, :, None], torch.zeros_like(W), W)
    res = SolverResult(W.to(dt_out), b.to(dt_out), it, converged)
    viol = 0.0
    if mu is not None:
        r = cone_values(W)
        viol = float(torch.clamp(-r, min=0).max()) if r.numel() else 0.0
        res.extra["mu"] = mu.to(dt_out)
    res.extra.update(violation=viol, tau=tau, barrier_gap=m / tau, feas_tol=1e-8)
    return res
