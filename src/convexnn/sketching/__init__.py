"""Randomized embeddings and sketched solvers (SPEC §6).

Embeddings ``S ∈ R^{m×n}`` with ``E[SᵀS] = I`` (:func:`make_sketch`), sketched least
squares and ridge (:func:`lstsq`: sketch-and-solve, iterative Hessian sketch,
sketch-preconditioned CG; NumPy, torch, SciPy sparse and Dask input), the Newton sketch
for logistic regression, one-bit embeddings with an angle estimator and a Hamming LSH
index, a streaming accumulator, randomized SVD / Nyström and a Nyström-preconditioned CG
that takes a matvec closure, and scikit-learn estimators. See ``docs/sketching.md``.
"""

from convexnn.sketching._dask import sketch_dask
from convexnn.sketching._embeddings import (
    SKETCH_KINDS,
    CountSketch,
    GaussianSketch,
    LESSSketch,
    RademacherSketch,
    Sketch,
    SparseSignSketch,
    SRHTSketch,
    TransposedSketch,
    make_sketch,
)
from convexnn.sketching._estimators import (
    SketchedLinearRegression,
    SketchedLogisticRegression,
    SketchedRidge,
)
from convexnn.sketching._hadamard import fwht
from convexnn.sketching._lowrank import (
    NystromApproximation,
    NystromPCGResult,
    nystrom,
    nystrom_pcg,
    randomized_svd,
)
from convexnn.sketching._lstsq import METHODS, LstsqInfo, choose_sketch_size, lstsq
from convexnn.sketching._newton import NewtonResult, logistic_objective, newton_sketch_logistic
from convexnn.sketching._precond import (
    SketchPreconditioner,
    build_preconditioner,
    effective_dimension,
)
from convexnn.sketching._quantized import (
    HammingLSHIndex,
    SignEmbedding,
    angle_estimate,
    hamming_fraction,
    sign_embedding,
)
from convexnn.sketching._streaming import StreamingSketch

__all__ = [
    "METHODS",
    "SKETCH_KINDS",
    "CountSketch",
    "GaussianSketch",
    "HammingLSHIndex",
    "LESSSketch",
    "LstsqInfo",
    "NewtonResult",
    "NystromApproximation",
    "NystromPCGResult",
    "RademacherSketch",
    "SRHTSketch",
    "SignEmbedding",
    "Sketch",
    "SketchPreconditioner",
    "SketchedLinearRegression",
    "SketchedLogisticRegression",
    "SketchedRidge",
    "SparseSignSketch",
    "StreamingSketch",
    "TransposedSketch",
    "angle_estimate",
    "build_preconditioner",
    "choose_sketch_size",
    "effective_dimension",
    "fwht",
    "hamming_fraction",
    "logistic_objective",
    "lstsq",
    "make_sketch",
    "newton_sketch_logistic",
    "nystrom",
    "nystrom_pcg",
    "randomized_svd",
    "sign_embedding",
    "sketch_dask",
]
