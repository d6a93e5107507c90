"""convexnn: train shallow ReLU networks as convex programs, to a certified global optimum."""

__version__ = "0.1.0"

__all__ = ["__version__"]
