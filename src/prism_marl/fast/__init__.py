"""The speed boundary: everything that makes the layers faster on a CPU and nothing else.

A layer's math is its reference form (``sharing.base.AgentLayer``: ``agent_kernels``, or a
built-in layer's ``kernel_and_bias``); what lives here computes the same numbers, up to
rounding, by cheaper routes, chosen from static shapes:

- ``grouped``: per-group and per-agent products on the two input layouts (a gather, all
  groups, or one batched product with agents first), the agent-major scaling and the
  reductions written as products;
- ``spectral``: Prism's factored, folded and per-agent-matrix paths and the FLOP model that
  picks one (decisions 0002, 0023, 0028, 0031, 0048);
- ``loops``: the trace-time hint that a loop reuses one build of the kernels;
- ``layout``: a network body's input with its agents first (``AgentsFirst``), and an on-policy
  update's rollout moved agents first once for all its gradient steps (``BatchLayout``).

The contract tests (tests/sharing/test_contract.py) hold every path of every layer to its
reference. A new strategy needs nothing from here; it may call ``grouped``'s products to go
faster.
"""
