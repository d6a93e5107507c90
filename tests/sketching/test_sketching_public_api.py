"""The public surface of convexnn.sketching imports and matches __all__."""

from __future__ import annotations

import importlib


def test_public_surface():
    mod = importlib.import_module("convexnn.sketching")
    for name in mod.__all__:
        assert hasattr(mod, name), name
    for name in ("lstsq", "make_sketch", "SketchedLinearRegression", "SketchedRidge",
                 "SketchedLogisticRegression", "nystrom_pcg", "StreamingSketch",
                 "HammingLSHIndex", "randomized_svd"):
        assert name in mod.__all__
    assert set(mod.SKETCH_KINDS) == {"gaussian", "rademacher", "srht", "countsketch",
                                     "sparse_sign", "less"}
