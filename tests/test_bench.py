"""``prism-marl bench``'s choice of settings (the timing itself is exercised in test_cli)."""

from prism_marl.algos.matd3 import MATD3Config
from prism_marl.bench.train import bench_algo_config, bench_env_config
from prism_marl.config import EnvConfig, default_algo_config
from prism_marl.presets import PRESETS


def test_a_preset_sets_the_hyper_parameters_of_its_own_algorithm_only():
    timed = bench_algo_config("matd3", "matd3-mabrax")
    assert timed.batch_size == 1000 and timed.buffer_size == 1_000_000
    assert timed.actor_lr == PRESETS["matd3-mabrax"]["algo"]["actor_lr"]
    assert timed.rollout_length == MATD3Config().rollout_length  # not in the preset
    assert bench_algo_config("matd3", None) == MATD3Config()
    assert bench_algo_config("mappo", "matd3-mabrax") == default_algo_config("mappo")
    assert bench_algo_config("mappo", "lbf").num_envs == 32  # a MAPPO preset


def test_a_preset_sets_the_switches_of_its_own_environment_only():
    assert bench_env_config("mabrax:hopper_3x1", "matd3-mabrax") == EnvConfig(
        id="mabrax:hopper_3x1"
    )
    assert bench_env_config("smax:3m", "matd3-mabrax") == EnvConfig(id="smax:3m")
    assert bench_env_config("smax:3m", None) == EnvConfig(id="smax:3m")
