"""RunConfig's JSON form: every strategy round-trips; old files rebuild what they ran."""

import json

from prism_marl.algos.ppo import PPOConfig
from prism_marl.config import RunConfig, from_dict, to_dict
from prism_marl.sharing import SNP, FuPS, FuPSID, Kaleidoscope, NoPS, Prism, SePS


def test_config_round_trip_for_every_strategy():
    for strategy in (
        NoPS(),
        FuPS(),
        FuPSID(),
        SePS(cluster_of_agent=(0, 1)),
        SePS(prepared_clusters=2),
        SNP(),
        Kaleidoscope(mask_of_agent=(0, 0)),
        Prism(rank=3, mask="hard"),
    ):
        config = RunConfig(sharing=strategy, algo_config=PPOConfig(hidden_sizes=(8, 8)))
        assert from_dict(json.loads(json.dumps(to_dict(config)))) == config


def test_config_json_from_before_a_changed_default_rebuilds_what_it_ran():
    """A config.json written before a field existed ran the old behaviour, not the new default."""
    for strategy, field, before in (
        (Prism(), "scaled_spectrum", False),
        (Kaleidoscope(), "relative_thresholds", False),
        (Kaleidoscope(), "reset_first_layer", True),
    ):
        data = to_dict(RunConfig(sharing=strategy))
        del data["sharing"][field]
        assert getattr(from_dict(data).sharing, field) is before
        assert getattr(from_dict(to_dict(RunConfig(sharing=strategy))).sharing, field) is (
            getattr(strategy, field)
        )
