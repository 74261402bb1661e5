"""Strategy instances covering every strategy and its main switches."""

from prism_marl.sharing import SNP, FuPS, FuPSID, Kaleidoscope, NoPS, Prism, SePS


def strategy_cases(num_agents: int) -> dict[str, object]:
    """name -> strategy for N agents (SePS prepared with two clusters, and unprepared)."""
    return {
        "nops": NoPS(),
        "fups": FuPS(),
        "fups-id": FuPSID(),
        "seps-unprepared": SePS(),
        "seps": SePS(cluster_of_agent=tuple(i % 2 for i in range(num_agents))),
        "snp": SNP(prune_ratio=0.5),
        "kaleidoscope": Kaleidoscope(),
        "kaleidoscope-shared-masks": Kaleidoscope(num_masks=2),
        "prism": Prism(),
        "prism-rank2-hard-id": Prism(rank=2, mask="hard", agent_id_input=True),
        "prism-scale": Prism(mask="scale"),
        "prism-plain-spectrum": Prism(rank=3, scaled_spectrum=False, renormalise=True),
    }
