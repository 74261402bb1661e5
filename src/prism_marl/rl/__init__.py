"""Pure RL math shared by every algorithm: returns, losses, normalisation."""
