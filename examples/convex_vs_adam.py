"""Convex training against Adam on the same network, the same λ and the same objective.

The convex solver returns a network and a lower bound; Adam trains a network of the same
width from three random initializations. Writes convex_vs_adam.png.

Run: python examples/convex_vs_adam.py   (well under 30 s)
"""

import time

from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convexnn import ConvexReLUClassifier
from convexnn.datasets import load_dataset
from convexnn.nonconvex import train_network
from convexnn.objective import network_objective
from convexnn.plotting import plot_objective_vs_time

ds = load_dataset("breast_cancer")
X_tr, X_te, y_tr, y_te = train_test_split(ds.X, ds.y, test_size=0.2, random_state=0,
                                          stratify=ds.y)
scaler = StandardScaler().fit(X_tr)
X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
lam = 1e-3

t0 = time.perf_counter()
est = ConvexReLUClassifier(lam=lam, patterns=100, random_state=0).fit(X_tr, y_tr)
t_convex = time.perf_counter() - t0
y_pm = 2.0 * (y_tr == est.classes_[1]) - 1.0  # the logistic loss takes labels in {-1, +1}
p_convex = network_objective(est.coefs_, est.intercepts_, X_tr, y_pm, lam, "logistic")
cert = est.certificate_
print(f"convex: objective {p_convex:.6f}, lower bound {cert.lower_bound:.6f} ({cert.scope}), "
      f"{est.n_neurons_} neurons, {t_convex:.1f} s, test accuracy {est.score(X_te, y_te):.3f}")

curves = {"convex": est.history_ or ([t_convex], [p_convex])}
width = max(est.n_neurons_, 1)
for seed in range(3):
    res = train_network(X_tr, y_pm, n_neurons=width, lam=lam, loss="logistic", lr=1e-2,
                        max_epochs=1500, time_limit=5.0, random_state=seed)
    curves[f"adam (seed {seed})"] = res.history
    print(f"adam seed {seed}: objective {res.objective:.6f} "
          f"({(res.objective - p_convex) / p_convex:+.2%} vs convex), {res.time:.1f} s")

plot_objective_vs_time(curves, lower_bound=cert.lower_bound,
                       bound_label=f"lower bound ({cert.scope})", path="convex_vs_adam.png")
print("wrote convex_vs_adam.png")
