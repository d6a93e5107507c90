"""Convex training against Adam on the same ReLU network, λ and objective.

Real data, one feature: Fisher's iris, petal width against petal length (150 flowers). The
convex solver returns a network and a lower bound; Adam trains a network of the same
width from three random initializations. Writes convex_vs_adam.png and fitted.png.

Run: python examples/convex_vs_adam.py
"""

import numpy as np

from convexnn import ConvexReLURegressor
from convexnn.datasets import load_dataset
from convexnn.nonconvex import train_network
from convexnn.objective import network_objective
from convexnn.plotting import plot_fitted_function, plot_objective_vs_time

ds = load_dataset("iris")
length = ds.X[:, ds.feature_names.index("petal length (cm)")]
width = ds.X[:, ds.feature_names.index("petal width (cm)")]
X = ((length - length.mean()) / length.std())[:, None]
y = (width - width.mean()) / width.std()
lam = 1e-3

records = []  # objective against time, from the solver's callback
est = ConvexReLURegressor(lam=lam, patterns=10, grow=False, random_state=0)
est.fit(X, y, callback=lambda info: records.append(info))
p_convex = network_objective(est.coefs_, est.intercepts_, X, y, lam)
cert = est.certificate_
print(f"convex: objective {p_convex:.6f}, lower bound {cert.lower_bound:.6f} ({cert.scope}), "
      f"{est.n_neurons_} neurons")

curves = {"convex": [r for r in records if "time" in r and "objective" in r]
          or est.history_}
width = max(est.n_neurons_, 1)
for seed in range(3):
    res = train_network(X, y, n_neurons=width, lam=lam, lr=1e-2, max_epochs=1500,
                        time_limit=3.0, random_state=seed)
    curves[f"adam (seed {seed})"] = res.history
    print(f"adam seed {seed}: objective {res.objective:.6f} "
          f"({(res.objective - p_convex) / p_convex:+.2%} vs convex), {res.time:.1f} s")

plot_objective_vs_time(curves, lower_bound=cert.lower_bound,
                       bound_label=f"lower bound ({cert.scope})", path="convex_vs_adam.png")
kinks = -est.intercepts_[0] / np.where(est.coefs_[0][0] != 0, est.coefs_[0][0], np.nan)
plot_fitted_function(est.predict, X, y, kinks=kinks, xlabel="petal length (standardized)",
                     ylabel="petal width (standardized)", path="fitted.png")
print("wrote convex_vs_adam.png and fitted.png")
