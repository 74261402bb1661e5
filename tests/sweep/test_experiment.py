"""Experiment files: expansion into runs, names and hashes, budgets, and bad input."""

import dataclasses
import json
from pathlib import Path

import pytest

from prism_marl.errors import ConfigError
from prism_marl.resources import parameter_count
from prism_marl.sharing import NoPS
from prism_marl.sweep import select
from prism_marl.sweep.experiment import config_hash, load_experiment, network_shape
from tests.sweep.conftest import tiny_experiment

RESULTS = Path(__file__).parents[2] / "docs" / "results"
EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").glob("*.toml"))


def test_runs_are_methods_times_tasks_with_the_files_settings(tiny_file):
    runs = load_experiment(tiny_file).runs("quick")
    assert [r.method for r in runs] == ["fups", "prism"]
    for run in runs:
        config = run.config
        assert (config.num_seeds, config.total_steps, config.eval_interval) == (2, 64, 32)
        assert config.algo_config.num_envs == 2 and config.algo_config.lr == 5e-4  # preset lr
        assert config.eval_episodes == 2 and config.env.id == "lbf:8x8-2p-2f-coop"
        assert (
            run.run_id == f"{run.method}__mappo__lbf-8x8-2p-2f-coop__quick__{run.config_hash[:8]}"
        )
        assert config.run_dir == run.run_id
    assert runs[1].config.sharing.rank == 4  # a quarter of the width 16


def test_the_hash_covers_the_whole_config_and_nothing_else(tiny_file):
    run = load_experiment(tiny_file).runs("quick")[0]
    assert config_hash(dataclasses.replace(run.config, run_dir="elsewhere")) == run.config_hash
    changed = dataclasses.replace(run.config, seed=1)
    assert config_hash(changed) != run.config_hash
    # One changed field in the file: a new run id, never the old directory.
    other = tiny_experiment(tiny_file.parent / "b.toml", steps=96)
    assert {r.run_id for r in load_experiment(other).runs("quick")}.isdisjoint(
        r.run_id for r in load_experiment(tiny_file).runs("quick")
    )
    assert len(run.config_hash) == 12


def test_a_later_field_at_its_old_value_keeps_committed_run_ids():
    """``LATER_FIELDS`` (decision 0054): Prism's ``regularise`` joined after these runs were
    committed; at ``loss`` it is left out of the hash, so their ids stand, and any other value
    is a new run."""
    from prism_marl.config import from_dict

    committed = sorted(RESULTS.glob("prism-qmix-orth-quick/prism-*/config.json"))
    earlier = 0
    for path in committed:
        config = from_dict(json.loads(path.read_text()))
        assert path.parent.name.endswith(config_hash(config)[:8])
        if config.sharing.regularise == "loss" and not config.sharing.scaled_directions:
            earlier += 1  # written before either field existed
            decoupled = dataclasses.replace(
                config, sharing=dataclasses.replace(config.sharing, regularise="decoupled")
            )
            assert config_hash(decoupled) != config_hash(config)
    assert earlier == 4


def test_only_selects_by_glob_or_word(tiny_file):
    runs = load_experiment(tiny_file).runs("quick")
    assert [r.method for r in select(runs, "prism")] == ["prism"]
    assert [r.method for r in select(runs, "fups__*")] == ["fups"]
    assert select(runs, "qmix") == []


BUDGETS = {
    'tasks = ["lbf:8x8-2p-2f-coop"]': 'tasks = ["lbf:8x8-2p-2f-coop"]\nbudgets = ["full", "half"]'
}


def test_half_budget_widths_match_half_of_nops_parameters(tmp_path):
    path = tiny_experiment(tmp_path / "budget.toml", **BUDGETS)
    runs = {(r.method, r.budget): r for r in load_experiment(path).runs("quick")}
    assert set(runs) == {(m, b) for m in ("fups", "prism") for b in ("full", "half")}
    nops_full = parameter_count(
        NoPS(), network_shape(runs["fups", "full"].config).with_width(16), 2
    )
    # NoPS's count at the backbone's width (16); FuPS matches it with a wider shared network.
    for budget, target in (("full", nops_full), ("half", nops_full // 2)):
        run = runs["fups", budget]
        assert run.config.algo_config.hidden_sizes == (run.width, run.width)
        count = parameter_count(run.config.sharing, network_shape(run.config), 2)
        wider = parameter_count(
            run.config.sharing,
            network_shape(run.config).with_width(run.width + 1),
            2,
        )
        assert abs(count - target) <= abs(wider - target), (budget, count, target)
    # With two agents half of NoPS is one network of the backbone's width: FuPS's own.
    assert runs["fups", "half"].width == 16 < runs["fups", "full"].width


BAD = [
    (
        {'[[methods]]\nname = "fups"': '[[methods]]\ncolour = 1\nname = "fups"'},
        "methods[0].colour: unknown key; valid: name, sharing, fields, rank_fraction",
    ),
    (
        {'sharing = "fups"': 'sharing = "shared"'},
        "methods[0].sharing: unknown name 'shared'; valid: nops, fups, fups-id",
    ),
    ({'algo = "mappo"': 'algo = "ppo"'}, "backbones[0].algo: unknown name 'ppo'; valid: mappo"),
    (
        {'presets = { lbf = "lbf" }': 'presets = { lbf = "lbf-fast" }'},
        "backbones[0].presets: unknown name 'lbf-fast'; valid: lbf, smax",
    ),
    (
        {'tasks = ["lbf:8x8-2p-2f-coop"]': 'tasks = ["atari:pong"]'},
        "tasks: env: unknown environment",
    ),
    ({'tasks = ["lbf:8x8-2p-2f-coop"]': 'tasks = ["lbf:8x8-9p"]'}, "tasks: "),
    (
        {"rank_fraction = 0.25": "fields = { rank = 4, colour = 2 }"},
        "methods.prism on lbf:8x8-2p-2f-coop with mappo: config: unknown field(s) ['colour']",
    ),
    ({"seeds = 2": "seeds = 2\ncolour = 1"}, "scales.quick.colour: unknown key; valid: seeds"),
    ({"seeds = 2": "seeds = 0"}, "num-seeds: must be >= 1"),
    ({'name = "tiny"': 'name = "tiny"\nfigures = 2'}, "file.figures: unknown key; valid: name"),
    (
        {"[scales.quick]": "[scales.fast]"},
        "scales.fast: unknown key; valid: quick, full, confirm, confirm-tuned",
    ),
    (
        {"[scales.full]": '[scales.confirm]\nextends = "quik"'},
        "scales.confirm.extends: no [scales.quik]; valid: quick, confirm",
    ),
    (
        {"[scales.full]": '[scales.confirm]\nextends = "confirm"'},
        "scales.confirm.extends: extends itself through confirm -> confirm",
    ),
    (
        {"seeds = 2": "seeds = 2\nbackbone_method_algo_fields = { mappo = { nops = {} } }"},
        "scales.quick.backbone_method_algo_fields.mappo.nops: unknown key; valid: fups, prism",
    ),
    (
        {"seeds = 2": "seeds = 2\nbackbone_method_algo_factors = { mappo = { fups = { x = 2 } } }"},
        "algo factors: unknown or not float field(s) ['x']; valid: lr,",
    ),
    (
        {"seeds = 2": "seeds = 2\nbackbone_tasks = { qmix = [] }"},
        "scales.quick.backbone_tasks.qmix: unknown key; valid: mappo",
    ),
    (
        {"seeds = 2": 'seeds = 2\nbackbone_tasks = { mappo = ["smax:smacv2_5_units"] }'},
        "scales.quick.backbone_tasks.mappo: unknown name 'smax:smacv2_5_units'",
    ),
    (
        {"seeds = 2": 'seeds = 2\ntask_methods = { "lbf:8x8-2p-2f" = ["fups"] }'},
        "scales.quick.task_methods.lbf:8x8-2p-2f: unknown key; valid: lbf:8x8-2p-2f-coop",
    ),
    (
        {"seeds = 2": 'seeds = 2\ntask_methods = { "lbf:8x8-2p-2f-coop" = ["nops"] }'},
        "scales.quick.task_methods.lbf:8x8-2p-2f-coop: unknown name 'nops'; valid: fups, prism",
    ),
    (
        {"seeds = 2": 'seeds = 2\ntask_run = { "lbf:8x8-2p-2f-coop" = 3 }'},
        "scales.quick.task_run.lbf:8x8-2p-2f-coop: must be a table of run fields",
    ),
    (
        {"seeds = 2": 'seeds = 2\ntask_run = { "lbf:8x8-2p-2f-coop" = { colour = 1 } }'},
        "unknown field(s) ['colour']",
    ),
    (
        {"seeds = 2": "seeds = 2\nbackbone_steps = { mappo = { atari = 5 } }"},
        "scales.quick.backbone_steps.mappo.atari: unknown key; valid: lbf",
    ),
    (
        {"seeds = 2": "seeds = 2\nbackbone_method_fields = { mappo = { nops = {} } }"},
        "scales.quick.backbone_method_fields.mappo.nops: unknown key; valid: fups, prism",
    ),
]


@pytest.mark.parametrize(("replace", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_input_names_the_file_the_key_and_the_valid_values(tmp_path, replace, message):
    path = tiny_experiment(tmp_path / "bad.toml", **replace)
    with pytest.raises(ConfigError) as caught:
        load_experiment(path).runs("quick")
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert "\n" not in text


def test_backbone_tasks_and_steps_override_the_scale(tmp_path):
    path = tiny_experiment(
        tmp_path / "subset.toml",
        **{
            "[scales.quick]\nseeds = 2": "[scales.quick]\nseeds = 2\n"
            "backbone_steps = { mappo = { lbf = 32 } }\nbackbone_tasks = { mappo = [] }",
        },
    )
    assert load_experiment(path).runs("quick") == []
    path = tiny_experiment(
        tmp_path / "steps.toml",
        **{
            "[scales.quick]\nseeds = 2": "[scales.quick]\nseeds = 2\n"
            "backbone_steps = { mappo = { lbf = 32 } }"
        },
    )
    assert {r.config.total_steps for r in load_experiment(path).runs("quick")} == {32}
    path = tiny_experiment(
        tmp_path / "fields.toml",
        **{
            "[scales.quick]\nseeds = 2": "[scales.quick]\nseeds = 2\n"
            "backbone_method_fields = { mappo = { prism = { lambda_div = 0.5 } } }"
        },
    )
    prism = [r for r in load_experiment(path).runs("quick") if r.method == "prism"]
    assert prism[0].config.sharing.lambda_div == 0.5


def test_task_methods_and_task_run_apply_to_their_task_only(tmp_path):
    two_tasks = {
        'tasks = ["lbf:8x8-2p-2f-coop"]': 'tasks = ["lbf:8x8-2p-2f-coop", "lbf:10x10-3p-3f"]',
        "[scales.quick]\nseeds = 2": "[scales.quick]\nseeds = 2\n"
        'task_methods = { "lbf:10x10-3p-3f" = ["prism"] }\n'
        'task_run = { "lbf:10x10-3p-3f" = { eval_episodes = 5 } }',
    }
    runs = load_experiment(tiny_experiment(tmp_path / "t.toml", **two_tasks)).runs("quick")
    assert [(r.method, r.task) for r in runs] == [
        ("fups", "lbf:8x8-2p-2f-coop"),
        ("prism", "lbf:8x8-2p-2f-coop"),
        ("prism", "lbf:10x10-3p-3f"),
    ]
    # task_run goes over the scale's run table: only that task's evaluation changes.
    assert [r.config.eval_episodes for r in runs] == [2, 2, 5]
    assert runs[2].config.final_eval_episodes == 2


def test_a_scale_extends_another_and_sets_one_methods_algorithm_fields(tmp_path):
    """The protocol's confirmation scales: quick's runs on other seeds, one method retuned."""
    path = tiny_experiment(
        tmp_path / "confirm.toml",
        **{
            "[scales.full]": '[scales.confirm]\nextends = "quick"\nrun = { seed = 100 }\n\n'
            '[scales.confirm-tuned]\nextends = "confirm"\n'
            "backbone_method_algo_fields = { mappo = { prism = { lr = 1e-3 } } }\n\n"
            "[scales.full]"
        },
    )
    experiment = load_experiment(path)
    quick = {r.method: r.config for r in experiment.runs("quick")}
    confirm = {r.method: r.config for r in experiment.runs("confirm")}
    tuned = {r.method: r for r in experiment.runs("confirm-tuned")}
    for method, config in confirm.items():
        # Only the seed differs from quick; run's other fields (eval_episodes) are kept.
        assert config.seed == 100 and quick[method].seed == 0
        assert dataclasses.replace(config, seed=0, run_dir="") == dataclasses.replace(
            quick[method], run_dir=""
        )
    assert tuned["prism"].config.algo_config.lr == 1e-3
    fups = tuned["fups"]
    assert fups.config == dataclasses.replace(confirm["fups"], run_dir=fups.run_id)
    assert tuned["prism"].config.algo_config.num_envs == 2  # the backbone's fields stay
    factored = tiny_experiment(
        tmp_path / "factors.toml",
        **{
            "[scales.full]": "[scales.confirm]\nseeds = 2\nsteps = { lbf = 64 }\n"
            "backbone_method_algo_factors = { mappo = { prism = { lr = 2.0, gamma = 0.5 } } }"
            "\n\n[scales.full]"
        },
    )
    runs = {r.method: r.config.algo_config for r in load_experiment(factored).runs("confirm")}
    # x 2 on the preset's lr (5e-4), x 0.5 on gamma; FuPS untouched.
    assert (runs["prism"].lr, runs["prism"].gamma) == (1e-3, runs["fups"].gamma * 0.5)
    assert runs["fups"].lr == 5e-4
    assert tuned["prism"].run_id.startswith("prism__mappo__lbf-8x8-2p-2f-coop__confirm-tuned__")


def test_not_toml_is_one_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_experiment(path)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_bundled_experiments_expand_at_the_quick_scale(path):
    """Every bundled file builds its quick runs: all seven strategies in Figures 2 and 3, at
    least one task per family of the file, at least 3 seeds, SePS clustering within budget."""
    experiment = load_experiment(path)
    quick = experiment.runs("quick")
    assert all(r.config.num_seeds >= 3 for r in quick)
    families = {t.split(":")[0] for t in experiment.tasks}
    if experiment.name.startswith("figure"):
        assert {r.task.split(":")[0] for r in quick} == families
    if experiment.name in ("figure2", "figure3"):
        assert {r.config.sharing.name for r in quick} == {
            "nops",
            "fups",
            "fups-id",
            "seps",
            "snp",
            "kaleidoscope",
            "prism",
        }
    if experiment.name.startswith(("figure", "ablations")):  # the paper's protocol
        full = experiment.scales["full"]
        assert full["seeds"] == 5
        budgets = full["steps"]
        assert all(budgets[f] == {"lbf": 2_000_000}.get(f, 10_000_000) for f in budgets)
    assert len({r.run_id for r in quick}) == len(quick)


@pytest.mark.parametrize(
    "path",
    [p for p in EXPERIMENTS if p.stem.startswith(("figure", "ablations"))],
    ids=lambda p: p.stem,
)
def test_figure_files_confirm_their_quick_runs_on_fresh_seeds(path):
    """The protocol's confirmation: the quick runs, config for config, from seed 100 on."""
    experiment = load_experiment(path)
    quick = {(r.method, r.backbone, r.task, r.budget): r.config for r in experiment.runs("quick")}
    confirm = experiment.runs("confirm")
    assert len(confirm) == len(quick)
    for run in confirm:
        assert run.config.seed == 100
        old = quick[(run.method, run.backbone, run.task, run.budget)]
        assert dataclasses.replace(run.config, seed=old.seed, run_dir=old.run_dir) == old
