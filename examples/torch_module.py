"""Export a fitted convex network as a torch.nn.Module and use it like any other.

Run: python examples/torch_module.py   (a few seconds)
"""

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler

from convexnn import ConvexGatedReLURegressor
from convexnn.datasets import load_dataset

ds = load_dataset("diabetes")
X = StandardScaler().fit_transform(ds.X)
y = (ds.y - ds.y.mean()) / ds.y.std()
est = ConvexGatedReLURegressor(lam=1e-2, patterns=10, grow=False, random_state=0).fit(X, y)

module = est.to_torch()
print(module)
Xt = torch.as_tensor(X, dtype=torch.float64)
with torch.no_grad():
    out = module(Xt).reshape(-1).numpy()
print("max |torch - predict| =", float(np.abs(out - est.predict(X)).max()))

# A torch module: gradients with respect to the input (saliency of each feature).
x0 = Xt[:1].clone().requires_grad_(True)
module(x0).sum().backward()
for name, g in sorted(zip(ds.feature_names, x0.grad[0].tolist()), key=lambda t: -abs(t[1]))[:3]:
    print(f"d output / d {name:>4} = {g:+.3f}")

# Its parameters are ordinary tensors: fine-tune, save with torch.save, trace, ...
n_params = sum(p.numel() for p in module.parameters())
print(f"{n_params} parameters, {est.n_neurons_} hidden neurons")
