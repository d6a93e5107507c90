"""Benchmarks of convexnn against its peers (not part of the installed package)."""
