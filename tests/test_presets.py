"""Presets carry each strategy's per-family settings, as its original ran them."""

import pytest

from prism_marl.presets import build_run_config


@pytest.mark.parametrize(
    "preset, alpha, ratio, interval, first",
    [
        ("smax", 5.0, 0.2, 1_000_000, False),
        ("qmix-smacv2", 5.0, 0.2, 1_000_000, False),
        ("mabrax", 0.1, 0.5, 1_000_000, True),
        ("matd3-mabrax", 0.1, 0.5, 1_000_000, True),
        ("mamujoco", 0.1, 0.5, 1_000_000, True),
        ("matd3-mamujoco", 0.1, 0.5, 1_000_000, True),
        ("lbf", 0.5, 0.1, 200_000, False),
        ("qmix-lbf", 0.5, 0.1, 200_000, False),
    ],
)
def test_kaleidoscope_settings_follow_the_family(preset, alpha, ratio, interval, first):
    sharing = build_run_config(sharing="kaleidoscope", preset=preset).sharing
    assert (sharing.alpha, sharing.reset_ratio) == (alpha, ratio)
    assert (sharing.reset_interval, sharing.reset_first_layer) == (interval, first)
    assert sharing.agent_id_input


def test_explicit_strategy_fields_win_and_other_strategies_are_untouched():
    config = build_run_config(sharing="kaleidoscope", preset="mabrax", sharing_fields={"alpha": 2})
    assert config.sharing.alpha == 2.0 and config.sharing.reset_ratio == 0.5
    assert not build_run_config(sharing="fups", preset="mabrax").sharing.agent_id_input


def test_mamujoco_presets_are_the_mabrax_settings_on_mamujoco():
    from prism_marl.presets import PRESETS

    for name, base in (("mamujoco", "mabrax"), ("matd3-mamujoco", "matd3-mabrax")):
        assert PRESETS[name]["algo"] == PRESETS[base]["algo"]
        assert PRESETS[name]["env"] == {"id": "mamujoco:hopper_3x1"}
