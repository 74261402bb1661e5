"""Ray and brax are extras: without them the rest works, and what needs them stops on one line
naming the extra to install (`pip install 'prism-marl[ray]'`, `[mabrax]`), exit code 2."""

import subprocess
import sys

import pytest

from prism_marl.cli import main
from prism_marl.config import EnvConfig
from prism_marl.envs import make_env
from prism_marl.errors import ConfigError
from prism_marl.extras import import_extra
from tests.sweep.conftest import tiny_experiment


@pytest.fixture
def without_ray_and_brax(monkeypatch):
    """`import ray` and `import brax` fail as they do where neither is installed."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "brax", None)


def one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_sweep_on_ray_without_ray_names_the_extra(tmp_path, capsys, without_ray_and_brax):
    path = tiny_experiment(tmp_path / "tiny.toml")
    results = tmp_path / "results"
    code = main(["sweep", str(path), "--executor", "ray", "--results", str(results)])
    assert code == 2
    assert one_line(capsys) == (
        "prism-marl: error: --executor ray needs ray, which is not installed: "
        "pip install 'prism-marl[ray]'"
    )
    assert not results.exists()


def test_mabrax_without_brax_names_the_extra(tmp_path, capsys, without_ray_and_brax):
    code = main(["train", "--env", "mabrax:hopper_3x1", "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert one_line(capsys) == (
        "prism-marl: error: env mabrax:hopper_3x1 needs brax, which is not installed: "
        "pip install 'prism-marl[mabrax]'"
    )


def test_lbf_and_smax_need_neither(without_ray_and_brax):
    for env_id in ("lbf:8x8-2p-2f-coop", "smax:3m"):
        assert make_env(EnvConfig(id=env_id)).spec.num_agents > 1


def test_a_broken_install_says_what_failed(monkeypatch):
    """An extra installed without one of its own dependencies: the message says which."""

    def broken(name):
        raise ModuleNotFoundError("No module named 'mujoco'", name="mujoco")

    monkeypatch.setattr("importlib.import_module", broken)
    with pytest.raises(ConfigError, match=r"^env x needs brax, which failed to import \(No mod"):
        import_extra("brax", "mabrax", "env x")


def test_checking_for_brax_prints_nothing():
    """brax prints to stdout when imported; the check only finds it, and jaxmarl's import (which
    imports brax) runs with stdout silenced, so `--json` output stays clean."""
    program = (
        "from prism_marl.config import EnvConfig\n"
        "from prism_marl.envs import make_env\n"
        "make_env(EnvConfig(id='mabrax:hopper_3x1'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=300
    )
    assert result.stdout == ""
