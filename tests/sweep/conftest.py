"""A tiny experiment file: two MAPPO runs on LBF that train in seconds."""

import pytest

TINY_EXPERIMENT = """
name = "tiny"
description = "two tiny MAPPO runs on LBF"
tasks = ["lbf:8x8-2p-2f-coop"]

[[backbones]]
name = "mappo"
algo = "mappo"
presets = { lbf = "lbf" }
algo_fields = { num_envs = 2, rollout_length = 8, num_minibatches = 1, num_epochs = 1, \
hidden_sizes = [16, 16], critic_hidden_sizes = [16, 16] }

[[methods]]
name = "fups"
sharing = "fups"

[[methods]]
name = "prism"
sharing = "prism"
rank_fraction = 0.25

[scales.quick]
seeds = 2
steps = { lbf = STEPS }
evaluations = EVALUATIONS
run = { eval_episodes = 2, final_eval_episodes = 2, diversity_episodes = 0 }

[scales.full]
seeds = 5
steps = { lbf = 2_000_000 }
"""


def tiny_experiment(path, steps=64, evaluations=2, **replace):
    """Write the tiny experiment (``replace``: text substitutions) and return its path."""
    text = TINY_EXPERIMENT.replace("STEPS", str(steps)).replace("EVALUATIONS", str(evaluations))
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


@pytest.fixture
def tiny_file(tmp_path):
    return tiny_experiment(tmp_path / "tiny.toml")
