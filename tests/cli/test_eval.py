"""``prism-marl eval``: the run's evaluation mode, and a rendered episode."""

import json

from prism_marl import cli


def test_eval_command_uses_the_runs_evaluation_mode(finished_run, capsys):
    _, run_dir, _ = finished_run
    outputs = {}
    for flags in ([], ["--sampled"], ["--greedy"]):
        assert cli.main(["eval", str(run_dir), "--episodes", "4", *flags]) == 0
        outputs[" ".join(flags)] = json.loads(capsys.readouterr().out)
    assert outputs[""] == outputs["--sampled"] and outputs[""]["greedy"] is False
    assert outputs["--greedy"]["greedy"] is True
    assert all(0.0 <= v <= 1.0 for v in outputs["--greedy"]["return_per_seed"])


def test_eval_renders_one_greedy_episode_as_a_gif(finished_run, tmp_path, capsys):
    from PIL import Image

    _, run_dir, _ = finished_run
    gif = tmp_path / "episode" / "lbf.gif"
    assert cli.main(["eval", str(run_dir), "--episodes", "2", "--render", str(gif)]) == 0
    assert json.loads(capsys.readouterr().out)["render"] == str(gif)
    image = Image.open(gif)
    assert image.format == "GIF" and image.n_frames > 1
