"""Quick start: a two-layer ReLU network fitted as a convex program, with its certificate.

Run: python examples/quickstart.py   (a few seconds)
"""

from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convexnn import ConvexGatedReLURegressor, lam_max
from convexnn.datasets import load_dataset

# Real data bundled with scikit-learn: disease progression of 442 diabetes patients.
ds = load_dataset("diabetes")
X_train, X_test, y_train, y_test = train_test_split(ds.X, ds.y, test_size=0.2, random_state=0)

# Standardize features and target so that λ means the same on any data set.
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
y_mean, y_std = y_train.mean(), y_train.std()
y_train_s = (y_train - y_mean) / y_std

# λ_max is the smallest λ whose optimal network is zero; take a fraction of it.
# Gated ReLU (fixed gates, a group lasso) is the fastest convex network; ConvexReLURegressor
# has the same interface and fits the ReLU network itself (see convex_vs_adam.py).
lam = 0.02 * lam_max(X_train, y_train_s, activation="gated")
est = ConvexGatedReLURegressor(lam=lam, patterns=10, grow=False, random_state=0)
est.fit(X_train, y_train_s)

cert = est.certificate_
print(f"lambda          {lam:.4g}")
print(f"objective       {est.objective_:.6f}")
print(f"lower bound     {cert.lower_bound:.6f}  (scope: {cert.scope})")
print(f"relative gap    {cert.rel_gap:.2e}")
print(f"hidden neurons  {est.n_neurons_} (chosen by the group penalty, not fixed in advance)")
print(f"test R^2        {est.score(X_test, (y_test - y_mean) / y_std):.3f}")

# The weights have MLPRegressor's layout.
W1, W2 = est.coefs_
print(f"W1 {W1.shape}, W2 {W2.shape}")
