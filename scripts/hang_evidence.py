"""Count hangs of a run's jitted init over fresh processes (decision 0014's evidence).

Each process builds one (algorithm, strategy, task) with the default networks, 3 seeds, and
runs the library's init program: ``init_seeds`` where the checkout has it, else the old
``jit(vmap(algo.init))``. A process that has not finished within ``--timeout`` seconds is
counted as hung and killed. ``--beside`` keeps a second training process running throughout,
as a user's other run would. ``--src`` points at another checkout's ``src`` (e.g. a worktree
of the commit before the fix) to count hangs on that code.

    python scripts/hang_evidence.py --processes 60 [--beside] [--src /tmp/old/src]

Not part of the test suite: it takes tens of minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

COMBOS = [
    ("mappo", "prism", "lbf:10x10-3p-3f"),
    ("mappo", "fups", "lbf:10x10-3p-3f"),
    ("mappo", "nops", "lbf:8x8-3p-2f"),
    ("qmix", "prism", "lbf:10x10-3p-3f"),
    ("mappo", "snp", "smax:smacv2_5_units"),
    ("ippo", "kaleidoscope", "lbf:8x8-3p-2f"),
    ("mappo", "fups-id", "smax:smacv2_5_units"),
    ("mappo", "seps", "lbf:10x10-3p-3f"),
    ("qmix", "nops", "smax:smacv2_5_units"),
    ("mappo", "prism", "mabrax:ant_4x2"),
    ("matd3", "prism", "mabrax:hopper_3x1"),
    ("mappo", "nops", "mabrax:hopper_3x1"),
]

CHILD = """
import sys, jax, prism_marl
getattr(prism_marl, "tune_cpu", lambda: None)()  # older checkouts tuned at import
from prism_marl.config import EnvConfig, RunConfig, default_algo_config
from prism_marl.run import build_algorithm, seed_keys
from prism_marl.sharing import STRATEGIES
algo, sharing, env = sys.argv[1:4]
config = RunConfig(algo=algo, sharing=STRATEGIES[sharing](), env=EnvConfig(id=env),
                   algo_config=default_algo_config(algo), num_seeds=3)
built = build_algorithm(config)
try:
    from prism_marl.programs import init_seeds
    init, code = init_seeds(built), "new"
except ImportError:
    init, code = jax.jit(jax.vmap(built.init)), "old"
jax.block_until_ready(init(seed_keys(config)))
print(code, prism_marl.__file__)
"""

BESIDE = [
    "train", "--algo", "mappo", "--sharing", "prism", "--env", "lbf:10x10-3p-3f",
    "--num-seeds", "1", "--total-steps", "100000000", "--no-progress", "--stall-timeout", "0",
]  # fmt: skip


def main() -> int:
    """Run the processes and print one line per process and a total."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--beside", action="store_true", help="a training process alongside")
    parser.add_argument("--src", help="another checkout's src directory to test")
    parser.add_argument("--run-dir", default="/tmp/prism-marl-hang-evidence-beside")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = args.src
    beside = None
    if args.beside:
        subprocess.run(["rm", "-rf", args.run_dir], check=True)
        command = [sys.executable, "-m", "prism_marl.cli", *BESIDE, "--run-dir", args.run_dir]
        beside = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        time.sleep(20)  # let it reach its training chunks
    hangs = 0
    try:
        for index in range(args.processes):
            combo = COMBOS[index % len(COMBOS)]
            start = time.monotonic()
            try:
                result = subprocess.run(
                    [sys.executable, "-c", CHILD, *combo],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                )
                outcome = result.stdout.strip() if result.returncode == 0 else "error"
                if result.returncode != 0:
                    print(result.stderr[-1000:], file=sys.stderr)
            except subprocess.TimeoutExpired:
                hangs += 1
                outcome = "HUNG"
            print(f"{index:3d} {' '.join(combo):45s} {time.monotonic() - start:6.1f}s {outcome}")
            sys.stdout.flush()
    finally:
        if beside is not None:
            beside.kill()
    print(f"hangs: {hangs} of {args.processes} (beside: {args.beside}, src: {args.src or 'here'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
