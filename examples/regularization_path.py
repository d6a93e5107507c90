"""The regularization path: one convex path gives the optimal network of every width.

λ goes from λ_max (the zero network) down; each fit is warm-started from the previous
one when the estimator supports it. Writes regularization_path.png in the current folder.

Run: python examples/regularization_path.py   (well under 30 s)
"""

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convexnn import ConvexGatedReLURegressor, lam_max
from convexnn.datasets import load_dataset
from convexnn.plotting import plot_regularization_path

ds = load_dataset("diabetes")
X_tr, X_val, y_tr, y_val = train_test_split(ds.X, ds.y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_tr)
X_tr, X_val = scaler.transform(X_tr), scaler.transform(X_val)
mu, sd = y_tr.mean(), y_tr.std()
y_tr_s, y_val_s = (y_tr - mu) / sd, (y_val - mu) / sd

top = lam_max(X_tr, y_tr_s, activation="gated")
lams = np.geomspace(top, top * 1e-2, 6)
est = ConvexGatedReLURegressor(lam=float(lams[0]), patterns=10, grow=False, random_state=0)
warm = "warm_start" in est.get_params()
if warm:
    est.set_params(warm_start=True)

neurons, errors = [], []
print(f"{'lambda':>10} {'neurons':>8} {'rel. gap':>9} {'val RMSE':>9}")
for lam in lams:
    est.set_params(lam=float(lam))
    est.fit(X_tr, y_tr_s)
    rmse = sd * np.sqrt(np.mean((est.predict(X_val) - y_val_s) ** 2))
    neurons.append(est.n_neurons_)
    errors.append(rmse)
    print(f"{lam:10.4g} {est.n_neurons_:8d} {est.certificate_.rel_gap:9.1e} {rmse:9.3f}")

best = int(np.argmin(errors))
print(f"chosen lambda {lams[best]:.4g}: {neurons[best]} neurons, validation RMSE "
      f"{errors[best]:.3f} (warm start: {warm})")
plot_regularization_path(lams, neurons, errors, chosen=lams[best],
                         error_label="validation RMSE", path="regularization_path.png")
print("wrote regularization_path.png")
