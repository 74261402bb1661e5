"""TOML configuration files: every run round-trips through --print-config's form."""

import pytest

from prism_marl.algos import ALGORITHMS
from prism_marl.config_file import dump_config, load_config_file
from prism_marl.errors import ConfigError
from prism_marl.presets import PRESETS, build_run_config
from prism_marl.sharing import STRATEGIES


def rebuild(path):
    file = load_config_file(path)
    return build_run_config(
        sharing=file.sharing or "prism",
        sharing_fields=file.sharing_fields,
        algo=file.algo,
        preset=file.preset,
        run_fields=file.run_fields,
        env_fields=file.env_fields,
        algo_fields=file.algo_fields,
    )


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_every_strategy_round_trips(tmp_path, algo):
    for sharing in STRATEGIES:
        config = build_run_config(
            sharing=sharing,
            algo=algo,
            run_fields={"run_dir": "runs/x y", "num_seeds": 2, "eval_greedy": False},
            env_fields={"id": "smax:3m", "episode_limit": 7},
            algo_fields={"num_envs": 3},
        )
        path = tmp_path / f"{sharing}.toml"
        path.write_text(dump_config(config))
        assert rebuild(path) == config, sharing


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_round_trip(tmp_path, preset):
    config = build_run_config(sharing="kaleidoscope", preset=preset)
    path = tmp_path / "c.toml"
    path.write_text(dump_config(config))
    assert rebuild(path) == config


def test_without_run_dir_and_nulls(tmp_path):
    config = build_run_config(sharing="fups", run_fields={"run_dir": "somewhere"})
    text = dump_config(config, keep_run_dir=False)
    assert "run_dir" not in text
    # None fields (episode_limit, eval_greedy) are left out: TOML has no null.
    assert "episode_limit" not in text and "eval_greedy" not in text
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert rebuild(path).run_dir == "runs/default"


def test_preset_under_the_files_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "smax"\ntotal_steps = 5000\n[algo_config]\nlr = 0.002\n')
    config = rebuild(path)
    preset = build_run_config(preset="smax")
    assert config.total_steps == 5000 and config.algo_config.lr == 0.002
    assert config.env == preset.env and config.algo == preset.algo


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("total_steps = ", "cannot read"),
        ("env = 3", "env must be a table"),
        ("algo = 3", "algo must be a string"),
    ],
)
def test_malformed_files(tmp_path, text, needle):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle) as error:
        load_config_file(path)
    assert "\n" not in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="--config: no such file"):
        load_config_file(tmp_path / "none.toml")
