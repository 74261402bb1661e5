"""Plots and tables that read only results (never training internals)."""
