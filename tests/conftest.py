"""Shared test configuration: CPU only."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import prism_marl  # noqa: E402,F401  (sets XLA's CPU flags before any test imports jax)
