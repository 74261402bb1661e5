"""``prism-marl train`` and ``prism-marl eval``.

Basic flags: --algo NAME --sharing NAME --env ID --num-seeds N --total-steps N --run-dir DIR;
every field of the chosen strategy, algorithm and environment is a further flag
(``--sharing.rank 16``, ``--algo.lr 3e-4``, ``--env.episode-limit 50``). ``--config FILE.toml``
sets any of them from a file (``config_file.py``); a preset's values come first, then the
file's, then the flags'. ``--print-config`` prints the resolved run as such a file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prism_marl.algos import ALGORITHMS
from prism_marl.cli.args import (
    EXIT_INTERRUPTED,
    OneLineParser,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from prism_marl.config import EnvConfig, RunConfig, algo_config_type
from prism_marl.config_file import ConfigFile, dump_config, load_config_file
from prism_marl.envs import registered_envs
from prism_marl.errors import ConfigError, require
from prism_marl.flags import add_dataclass_flags, field_docs, overrides
from prism_marl.presets import PRESETS, build_run_config
from prism_marl.sharing import STRATEGIES

if TYPE_CHECKING:  # run_train imports it when it runs, as eval does
    from prism_marl.loggers import WandbOptions
    from prism_marl.run import Trainer

RUN_FIELDS = (
    "num_seeds",
    "total_steps",
    "eval_interval",
    "eval_episodes",
    "final_eval_episodes",
    "diversity_episodes",
    "seed",
    "run_dir",
)


def _selection_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="prism-marl train", add_help=False)
    parser.add_argument("--algo", choices=list(ALGORITHMS))
    parser.add_argument("--sharing", choices=list(STRATEGIES))
    parser.add_argument("--preset", choices=list(PRESETS))
    parser.add_argument("--resume", metavar="RUN_DIR")
    parser.add_argument("--config", metavar="FILE.toml")
    return parser


def run_default(name: str) -> object:
    """The default shown in --help for a run field."""
    if name == "run_dir":
        return "runs/<algo>_<sharing>_<env>_<time>"
    return getattr(RunConfig(), name)


def build_train_parser(sharing: str, algo: str) -> argparse.ArgumentParser:
    """The full parser, with the flags of the selected strategy and algorithm."""
    parser = OneLineParser(
        prog="prism-marl train",
        description="Train a sharing strategy with any algorithm; results go to --run-dir.",
    )
    parser.add_argument("--algo", choices=list(ALGORITHMS), help="algorithm (default: mappo)")
    parser.add_argument(
        "--sharing", choices=list(STRATEGIES), help="parameter-sharing strategy (default: prism)"
    )
    families = ", ".join(f"{name}:" for name in registered_envs())
    parser.add_argument(
        "--env",
        metavar="ID",
        help=f"environment id, family:task; families {families} (default: lbf:8x8-2p-2f-coop)",
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="paper-style settings of a benchmark family; explicit flags win",
    )
    parser.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint"
    )
    parser.add_argument(
        "--config",
        metavar="FILE.toml",
        help="read the run's settings from a TOML file in --print-config's form; flags given "
        "here override it, and it overrides --preset",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved settings as a TOML file for --config, and exit without training",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress line")
    parser.add_argument(
        "--stall-timeout",
        type=non_negative_float,
        default=300.0,
        metavar="SECONDS",
        help="end the run (exit 4, checkpoints kept) when the process uses no CPU for this "
        "long, naming the phase and the resume command; 0 turns the watchdog off (default: 300)",
    )
    add_wandb_flags(parser, group_default="none")
    parser.add_argument(
        "--devices",
        type=positive_int,
        metavar="N",
        help="spread the seeds over N local devices (GPUs, or CPU devices); they must divide "
        "--num-seeds; a resumed run may use another count (default: as many as divide the "
        "seeds evenly)",
    )
    for name in RUN_FIELDS:
        kinds: dict[str, Callable[[str], Any]] = {
            "run_dir": str,
            "seed": int,
            "diversity_episodes": non_negative_int,
        }
        kind = kinds.get(name, positive_int)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=kind,
            help=f"{field_docs(RunConfig).get(name, '')} (default: {run_default(name)})",
        )
    parser.add_argument(
        "--eval-greedy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="evaluate the greedy policy; --no-eval-greedy samples actions (default: sampled "
        "for MAPPO/IPPO, greedy for QMIX/VDN/MATD3; the final evaluation of a stochastic "
        "policy reports both)",
    )
    add_dataclass_flags(
        parser,
        STRATEGIES[sharing],
        "sharing",
        STRATEGIES[sharing](),
        f"strategy {sharing} (--sharing.*)",
    )
    add_dataclass_flags(
        parser,
        algo_config_type(algo),
        "algo",
        algo_config_type(algo)(),
        f"{algo} hyper-parameters (--algo.*; --algo NAME selects whose flags are listed)",
    )
    add_dataclass_flags(parser, EnvConfig, "env", EnvConfig(), "environment (--env.*)")
    return parser


def add_wandb_flags(parser: argparse.ArgumentParser, group_default: str) -> None:
    """``--wandb-project`` and its entity, group and tags (``prism-marl train`` and ``sweep``)."""
    parser.add_argument(
        "--wandb-project",
        metavar="PROJECT",
        help="also log to this Weights & Biases project (the `wandb` extra; WANDB_MODE=offline "
        "writes the run to disk only): the TensorBoard scalars, the config and the summary",
    )
    parser.add_argument("--wandb-entity", metavar="ENTITY", help="W&B entity (default: yours)")
    parser.add_argument(
        "--wandb-group", metavar="GROUP", help=f"W&B group (default: {group_default})"
    )
    # One comma-separated value, not nargs="+": a list flag before `prism-marl sweep`'s FILE
    # would swallow the file as a tag.
    parser.add_argument(
        "--wandb-tags",
        metavar="TAG[,TAG...]",
        type=lambda value: tuple(tag for tag in value.split(",") if tag),
        default=(),
        help="W&B tags, comma-separated",
    )


def wandb_options(args: argparse.Namespace, group: str | None = None) -> WandbOptions | None:
    """The W&B options of the command line, None without ``--wandb-project``.

    Checks that ``wandb`` is installed before anything runs (a one-line error naming the
    extra, exit 2); the other flags without ``--wandb-project`` are an error too.
    """
    from prism_marl.loggers import WandbOptions, require_wandb

    if not args.wandb_project:
        for flag in ("entity", "group", "tags"):
            if getattr(args, f"wandb_{flag}"):
                raise ConfigError(f"--wandb-{flag}: needs --wandb-project")
        return None
    require_wandb()
    return WandbOptions(
        project=args.wandb_project,
        entity=args.wandb_entity,
        group=args.wandb_group or group,
        tags=tuple(args.wandb_tags),
    )


def parse_train_args(argv: list[str]) -> tuple[RunConfig | None, argparse.Namespace]:
    """Build the RunConfig from the command line (None when resuming).

    Precedence, lowest first: the defaults, ``--preset``, the ``--config`` file, the flags.
    """
    selection, _ = _selection_parser().parse_known_args(argv)
    file = load_config_file(selection.config) if selection.config else ConfigFile()
    sharing = selection.sharing or file.sharing or "prism"
    preset_name = selection.preset or file.preset
    preset: dict[str, Any] = PRESETS.get(preset_name or "", {})
    algo = selection.algo or file.algo or preset.get("run", {}).get("algo", "mappo")
    require(
        sharing in STRATEGIES,
        "sharing",
        f"unknown strategy {sharing!r}; valid: {', '.join(STRATEGIES)}",
    )
    require(
        algo in ALGORITHMS, "algo", f"unknown algorithm {algo!r}; valid: {', '.join(ALGORITHMS)}"
    )
    _check_file_matches(file, sharing, algo)
    args = build_train_parser(sharing, algo).parse_args(argv)
    if args.resume:
        return None, args
    run = {**file.run_fields}
    run.update({k: getattr(args, k) for k in RUN_FIELDS if getattr(args, k) is not None})
    if args.eval_greedy is not None:
        run["eval_greedy"] = args.eval_greedy
    env_fields = {**file.env_fields, **overrides(args, "env")}
    if args.env:
        env_fields["id"] = args.env
    if "run_dir" not in run:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        env_id = env_fields.get("id", preset.get("env", {}).get("id", EnvConfig().id))
        env_name = str(env_id).replace(":", "_").replace("|", "-")
        run["run_dir"] = f"runs/{algo}_{sharing}_{env_name}_{stamp}"
        args.generated_run_dir = True
    config = build_run_config(
        sharing=sharing,
        sharing_fields={**file.sharing_fields, **overrides(args, "sharing")},
        algo=algo,
        preset=preset_name,
        run_fields=run,
        env_fields=env_fields,
        algo_fields={**file.algo_fields, **overrides(args, "algo")},
    )
    return config, args


def _check_file_matches(file: ConfigFile, sharing: str, algo: str) -> None:
    """A file's strategy or algorithm fields cannot be applied to another one chosen by a flag."""
    if file.sharing_fields and file.sharing not in (None, sharing):
        raise ConfigError(
            f"--sharing {sharing}: the --config file's [sharing] table sets {file.sharing}'s "
            f"fields ({', '.join(file.sharing_fields)}); remove them or choose {file.sharing}"
        )
    if file.algo_fields and file.algo not in (None, algo):
        raise ConfigError(
            f"--algo {algo}: the --config file's [algo_config] table sets {file.algo}'s "
            f"fields ({', '.join(file.algo_fields)}); remove them or choose {file.algo}"
        )


def run_train(argv: list[str]) -> int:
    """``prism-marl train``: validate everything before any file is written, then train."""
    from prism_marl.run import Trainer
    from prism_marl.watchdog import Watchdog, die_with_parent

    die_with_parent()

    config, args = parse_train_args(argv)
    if args.print_config:
        print_config(config, args)
        return 0
    progress = not args.no_progress
    wandb = wandb_options(args)
    run_dir = args.resume if config is None else config.run_dir
    watchdog = None
    if args.stall_timeout > 0:
        watchdog = Watchdog(args.stall_timeout, f"prism-marl train --resume {shlex.quote(run_dir)}")
    if config is None:
        trainer = Trainer.from_run_dir(
            args.resume, progress=progress, watchdog=watchdog, wandb=wandb, devices=args.devices
        )
    else:
        trainer = Trainer(
            config, progress=progress, watchdog=watchdog, wandb=wandb, devices=args.devices
        )
    resume_command = f"prism-marl train --resume {shlex.quote(run_dir)}"
    try:
        with stop_on_first_ctrl_c(trainer):
            summary = trainer.run()
    except KeyboardInterrupt:
        # The second Ctrl-C: the run's files are closed by now (``Trainer.run``'s exit
        # stack); a save it cut short is left unfinished, and resume takes the one before.
        print(f"\nprism-marl: interrupted; continue with: {resume_command}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if summary is None:
        print(
            f"prism-marl: stopped at a checkpoint; continue with: {resume_command}", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    print_summary(summary, trainer.run_dir)
    return 0


def print_config(config: RunConfig | None, args: argparse.Namespace) -> None:
    """``--print-config``: the resolved run (or the resumed run's) as TOML on stdout."""
    if config is None:
        from prism_marl.config import from_dict

        path = Path(args.resume) / "config.json"
        try:
            config = from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            raise ConfigError(f"--resume: no readable config.json in {args.resume!r}") from None
    keep = not getattr(args, "generated_run_dir", False)
    print(dump_config(config, keep_run_dir=keep), end="")


@contextlib.contextmanager
def stop_on_first_ctrl_c(trainer: Trainer) -> Iterator[None]:
    """The first Ctrl-C stops the run after its current chunk's checkpoint; a second, at once.

    An interrupt in the middle of a chunk would cut the checkpoint save in progress (orbax then
    logs the failure with a traceback). Leaves SIGINT alone where it is ignored (a shell's
    background job), handled outside Python, or where this is not the main thread.
    """
    previous = signal.getsignal(signal.SIGINT)
    main_thread = threading.current_thread() is threading.main_thread()
    if previous in (signal.SIG_IGN, None) or not main_thread:
        yield
        return

    def first(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous)
        print(
            "\nprism-marl: stopping after this chunk's checkpoint (Ctrl-C again to stop now)",
            file=sys.stderr,
        )
        trainer.request_stop()

    signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        # After a stop the process only reports and exits: a second Ctrl-C pressed meanwhile
        # would interrupt the interpreter's teardown instead.
        stopped = trainer.stop_requested
        signal.signal(signal.SIGINT, signal.SIG_IGN if stopped else previous)


def print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    """The results table at the end of training."""
    print(
        f"\n{summary['algo']} + {summary['sharing']} on {summary['env']}, "
        f"{summary['num_seeds']} seeds × {summary['env_steps']:,} steps"
    )

    def interval(key: str) -> str:
        low, high = summary[key]
        return f"[{low:.3f}, {high:.3f}]"

    rows = [
        ("final return (mean)", f"{summary['final_return_mean']:.3f}"),
        ("  95% CI", interval("final_return_mean_ci95")),
        ("final return (IQM)", f"{summary['final_return_iqm']:.3f}"),
        ("  95% CI", interval("final_return_iqm_ci95")),
        ("per seed", ", ".join(f"{v:.3f}" for v in summary["final_returns"])),
    ]
    if "final_win_rate_mean" in summary:
        rows.append(("final win rate", f"{summary['final_win_rate_mean']:.3f}"))
    if "eval_mode" in summary:
        rows.insert(0, ("evaluation", summary["eval_mode"]))
    for mode in ("greedy", "sampled"):
        if f"final_return_{mode}_mean" in summary and summary.get("eval_mode") != mode:
            line = f"{summary[f'final_return_{mode}_mean']:.3f}"
            if f"final_win_rate_{mode}_mean" in summary:
                line += f" (win rate {summary[f'final_win_rate_{mode}_mean']:.3f})"
            rows.append((f"final return, {mode}", line))
    if "absolute_return_mean" in summary:
        rows.append(
            (
                f"best policy, {summary['absolute_episodes']} episodes",
                f"{summary['absolute_return_mean']:.3f} (steps "
                + ", ".join(f"{s:,}" for s in summary["best_env_steps"])
                + ")",
            )
        )
    rows += [
        ("parameters (all networks)", f"{summary['parameters']:,}"),
        ("additional (actor)", f"{summary['additional']:,}"),
        ("steps/s (all seeds)", f"{summary['steps_per_second']:,.0f}"),
        ("wall seconds", f"{summary['wall_seconds']:.1f}"),
        ("results", str(run_dir)),
        ("learning curve", str(run_dir / "learning_curve.png")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


def run_eval(argv: list[str]) -> int:
    """``prism-marl eval RUN_DIR``: returns from the last checkpoint, optional GIF."""
    parser = OneLineParser(
        prog="prism-marl eval",
        description="Evaluate a trained run's last checkpoint in the run's evaluation mode "
        "(--greedy or --sampled to choose).",
    )
    parser.add_argument("run_dir", help="a run directory written by prism-marl train")
    parser.add_argument(
        "--episodes", type=positive_int, default=100, help="episodes per seed (default: 100)"
    )
    parser.add_argument(
        "--render", metavar="FILE.gif", help="render one greedy episode of seed 0 (LBF and SMAX)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--sampled",
        dest="greedy",
        action="store_false",
        default=None,
        help="sample actions as in training",
    )
    mode.add_argument("--greedy", dest="greedy", action="store_true", help="take the greedy action")
    args = parser.parse_args(argv)
    if args.render and not args.render.lower().endswith(".gif"):
        raise ConfigError(f"--render: must be a .gif file, got {args.render!r}")
    from prism_marl.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, args.episodes, args.render, greedy=args.greedy)
    print(json.dumps(result, indent=2))
    return 0
