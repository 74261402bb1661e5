"""prism-marl: Prism spectral parameter sharing and its baselines for multi-agent RL, in JAX."""

__version__ = "0.1.0"
