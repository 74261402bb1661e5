"""Resource accounting from real variable trees against method.md's closed forms."""

import pytest

from prism_marl.errors import ConfigError
from prism_marl.resources import NetworkShape, budget_target, measure, solve_width
from prism_marl.sharing import SNP, FuPS, FuPSID, Kaleidoscope, NoPS, Prism, SePS

SHAPE = NetworkShape(input_size=12, hidden_sizes=(64, 32), output_size=6)
LAYERS = [(12, 64), (64, 32), (32, 6)]  # (d_in, d_out); the last is the output layer
DENSE = sum(i * o + o for i, o in LAYERS)
KERNELS = sum(i * o for i, o in LAYERS)
HIDDEN_OUT = 64 + 32


def closed_form(name: str, n: int, clusters: int = 3) -> tuple[int, int]:
    """(parameters, additional) from the table in method.md §2."""
    if name == "nops":
        return n * DENSE, (n - 1) * DENSE
    if name == "fups":
        return DENSE, 0
    if name == "fups-id":
        return DENSE + n * 64, n * 64
    if name == "seps":
        k = min(clusters, n)
        return k * DENSE, (k - 1) * DENSE + n
    if name == "snp":
        return DENSE, n * HIDDEN_OUT
    if name == "kaleidoscope":
        return DENSE + n * KERNELS, n * KERNELS
    if name == "prism":
        ranks = [min(i, o) for i, o in LAYERS]
        shared = sum(o * r + i * r + r + o for (i, o), r in zip(LAYERS, ranks, strict=True))
        return shared + n * sum(ranks), n * sum(ranks)
    raise KeyError(name)


STRATEGIES = {
    "nops": NoPS(),
    "fups": FuPS(),
    "fups-id": FuPSID(),
    "seps": SePS(),
    "snp": SNP(),
    "kaleidoscope": Kaleidoscope(),
    "prism": Prism(),
}


@pytest.mark.parametrize("n", [1, 2, 5, 64])
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_counts_match_closed_forms(name, n):
    row = measure(STRATEGIES[name], SHAPE, n, with_flops=False)
    parameters, additional = closed_form(name, n)
    assert (row.parameters, row.additional) == (parameters, additional)
    assert row.normalized_overhead == pytest.approx(additional / (parameters + additional))
    # Adam: first and second moments in float32 plus an int32 step count.
    assert row.optimizer_bytes == 8 * parameters + 4


def test_prism_rank_switch_counts():
    row = measure(Prism(rank=4), SHAPE, 8, with_flops=False)
    shared = sum(o * 4 + i * 4 + 4 + o for i, o in LAYERS)
    assert (row.parameters, row.additional) == (shared + 8 * 12, 8 * 12)


def test_gru_counts_fups_and_nops():
    gru = NetworkShape(input_size=10, hidden_sizes=(16, 8), output_size=3, recurrent=True)
    dense = (10 * 16 + 16) + (16 * 24 + 24) + (8 * 24 + 24) + (8 * 3 + 3)
    assert measure(FuPS(), gru, 4, with_flops=False).parameters == dense
    assert measure(NoPS(), gru, 4, with_flops=False).parameters == 4 * dense
    # Prism keeps recurrent kernels shared and dense unless spectral_gru is on.
    prism = measure(Prism(), gru, 4, with_flops=False)
    spectral = measure(Prism(spectral_gru=True), gru, 4, with_flops=False)
    assert spectral.additional - prism.additional == 4 * min(8, 24)


def test_flops_of_shared_mlp_are_two_per_multiply_add():
    row = measure(FuPS(), SHAPE, 4)
    matmul = 2 * KERNELS
    assert matmul <= row.flops <= 1.1 * matmul


def test_width_solver_matches_hand_solution():
    shape = NetworkShape(input_size=12, hidden_sizes=(64, 64), output_size=6)
    target = budget_target("full", shape, 4)
    assert target == 4 * (12 * 64 + 64 + 64 * 64 + 64 + 64 * 6 + 6)
    # FuPS count: w² + 20w + 6; nearest to 21528 is w = 137 (21515) rather than 138 (21810).
    assert solve_width(FuPS(), shape, 4, target) == (137, 21515)
    assert budget_target("half", shape, 4) == target // 2
    width, count = solve_width(NoPS(), shape, 4, target)
    assert (width, count) == (64, target)


def test_budget_rejects_bad_target():
    with pytest.raises(ConfigError, match="budget"):
        budget_target("most", SHAPE, 2)


COUNT_CURVES = {
    "dense-quadratic": lambda w: w * w + 20 * w + 6,
    "one-layer-linear": lambda w: 7 * w + 3,
    "rank-tied-kinks": lambda w: 3 * w * -(-w // 4) + 40 * w + 9,  # rank = ceil(w / 4)
    "steps": lambda w: 50 * (w // 8) + w,
}


@pytest.mark.parametrize("curve", COUNT_CURVES.values(), ids=COUNT_CURVES.keys())
def test_width_solver_finds_what_a_scan_of_every_width_finds(curve, monkeypatch):
    """On increasing count curves (exact quadratics, linear, kinked, step-like) the fitted
    guess and the gallop give the width a scan of [1, max] gives, in a handful of counts:
    nearest the target, the narrower on ties, the widest when nothing reaches it."""
    import prism_marl.resources as resources

    calls = []
    monkeypatch.setattr(
        resources,
        "parameter_count",
        lambda _s, shape, _n: calls.append(1) or curve(shape.hidden_sizes[0]),
    )
    widths = range(1, 2001)
    for target in (curve(1), curve(5) + 1, curve(64), curve(91) - 3, curve(777) + 2, curve(1999)):
        expected = min(widths, key=lambda w: (abs(curve(w) - target), w))
        calls.clear()
        assert solve_width(FuPS(), SHAPE, 3, target, max_width=2000) == (expected, curve(expected))
        assert len(calls) <= 30
    assert solve_width(FuPS(), SHAPE, 3, curve(2000) + 1, max_width=2000) == (2000, curve(2000))
