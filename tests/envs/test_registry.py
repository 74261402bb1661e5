"""The environment registry: built-in families, a user's family, one-line errors."""

import pytest

import prism_marl
from prism_marl import cli
from prism_marl.config import EnvConfig
from prism_marl.envs import make_env, register_env, registered_envs, registry, unregister_env
from prism_marl.errors import ConfigError

BUILT_IN = ("lbf", "smax", "mabrax", "mamujoco", "jaxmarl", "mpe")


@pytest.fixture
def family():
    """A family name no other test uses, forgotten afterwards."""
    yield "probe"
    unregister_env("probe")


def test_built_in_families_are_registered_and_listed_in_the_error():
    assert registered_envs()[: len(BUILT_IN)] == BUILT_IN
    for bad in ("atari:pong", "no-colon"):
        with pytest.raises(ConfigError) as error:
            EnvConfig(id=bad)
        message = str(error.value)
        assert message.startswith("env: unknown environment") and "\n" not in message
        assert all(f"{name}:" in message for name in BUILT_IN), message


def test_a_registered_family_is_accepted_and_built_through_its_factory(family):
    built = []

    def factory(config):
        built.append(config.id)
        return "an environment"

    with pytest.raises(ConfigError, match="valid families"):
        EnvConfig(id=f"{family}:x")
    register_env(family, factory)
    assert family in registered_envs()
    assert make_env(EnvConfig(id=f"{family}:x", episode_limit=3)) == "an environment"
    assert built == [f"{family}:x"]
    register_env(family, factory)  # the same factory again: nothing changes
    with pytest.raises(ConfigError, match=r"env: 'probe' is already registered \(overwrite"):
        register_env(family, lambda config: "another")
    register_env(family, lambda config: "replaced", overwrite=True)
    assert make_env(EnvConfig(id=f"{family}:x")) == "replaced"
    unregister_env(family)
    with pytest.raises(ConfigError, match="valid families"):
        EnvConfig(id=f"{family}:x")


@pytest.mark.parametrize("prefix", ["", "a:b", "with space", ":x", 3])
def test_malformed_prefixes_are_refused(prefix):
    with pytest.raises(ConfigError, match="env: a family is letters"):
        register_env(prefix, lambda config: None)


def test_the_top_level_package_exports_the_registry_lazily():
    assert prism_marl.register_env is register_env
    assert prism_marl.registered_envs is registered_envs
    with pytest.raises(AttributeError):
        prism_marl.no_such_name  # noqa: B018


def test_an_installed_package_provides_a_family_through_its_entry_point(monkeypatch, family):
    class Entry:
        def load(self):
            return lambda config: f"built {config.id}"

    def entry_points(group, name):
        assert group == registry.ENTRY_POINT_GROUP
        return [Entry()] if name == family else []

    monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
    assert make_env(EnvConfig(id=f"{family}:t")) == f"built {family}:t"
    assert family in registered_envs()


def test_the_cli_refuses_an_unknown_family_on_one_line_naming_the_registered(tmp_path, capfd):
    run_dir = tmp_path / "never"
    assert cli.main(["train", "--run-dir", str(run_dir), "--env", "atari:pong"]) == 2
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "env: unknown environment 'atari:pong'" in lines[0], lines
    assert "mpe:" in lines[0] and not run_dir.exists()
