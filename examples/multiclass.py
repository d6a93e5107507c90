"""Several classes: a gated ReLU network with vector outputs, trained to a certified optimum.

Each hidden neuron feeds all ten classes (output weights α ∈ R^10). For gated networks
the convex program is then exact with a nuclear norm per activation pattern, and the
fit returns one neuron per singular value of each pattern's weight block.

Run: python examples/multiclass.py   (under a minute)
"""

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from convexnn import ConvexGatedReLUClassifier, lam_max
from convexnn.datasets import load_dataset

# Real data bundled with scikit-learn: 1,797 handwritten digits, 8 × 8 pixels, 10 classes.
ds = load_dataset("digits")
X_train, X_test, y_train, y_test = train_test_split(ds.X, ds.y, test_size=0.25,
                                                    random_state=0, stratify=ds.y)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

gates = np.random.default_rng(0).standard_normal((20, X_train.shape[1]))
lam = 0.05 * lam_max(X_train, y_train, loss="softmax", activation="gated", patterns=gates)
est = ConvexGatedReLUClassifier(lam=lam, patterns=gates, grow=False, tol=1e-4)
est.fit(X_train, y_train)

cert = est.certificate_
W1, W2 = est.coefs_
feeds = np.count_nonzero(np.abs(W2) > 1e-8 * np.abs(W2).max(), axis=1)
print(f"lambda          {lam:.4g}")
print(f"objective       {est.objective_:.6f}")
print(f"lower bound     {cert.lower_bound:.6f}  (scope: {cert.scope})")
print(f"relative gap    {cert.rel_gap:.2e}")
print(f"hidden neurons  {est.n_neurons_} from {len(gates)} gates")
print(f"classes fed per neuron: median {int(np.median(feeds))} of {W2.shape[1]}")
print(f"test accuracy   {est.score(X_test, y_test):.3f}")
