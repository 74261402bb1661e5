"""`import prism_marl` changes no process-wide setting; `tune_cpu()` makes them (decision 0040)."""

import json
import os
import subprocess
import sys

import jax
import pytest

import prism_marl
from prism_marl.cpu import EIGEN_FLAG, XLA_CACHE_VARIABLE

REPORT = """
import json, os
import jax
from jax._src import xla_bridge
started = xla_bridge.backends_are_initialized()
bits = jax.jit(lambda k: jax.random.bits(k, (8,))).lower(jax.random.key(0)).compile()
f = jax.jit(lambda x: (x @ x @ x).sum())
x = jax.numpy.ones((1024, 1024))
f(x).block_until_ready()
print(json.dumps({
    "started_before_computing": started,
    "xla_flags": os.environ.get("XLA_FLAGS"),
    "async_dispatch": jax.config.values["jax_cpu_enable_async_dispatch"],
    "threefry_rolled": "while" in bits.as_text(),
    "cache": jax.config.values["jax_compilation_cache_dir"],
    "ready_on_return": f(x).is_ready(),
}))
"""


def report(tmp_path, before: str) -> dict:
    """Run ``before`` then REPORT in a fresh process without this suite's XLA settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", XLA_CACHE_VARIABLE)}
    env[XLA_CACHE_VARIABLE] = str(tmp_path / "cache")
    program = f"import warnings\nwarnings.simplefilter('error')\n{before}\n{REPORT}"
    result = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_package_and_its_command_line_changes_nothing(tmp_path):
    imports = "import prism_marl, prism_marl.api, prism_marl.cli, prism_marl.run, prism_marl.sweep"
    got = report(tmp_path, imports)
    # Nothing the CLI imports computes, so its main() tunes before the backend starts.
    assert not got["started_before_computing"]
    assert got["xla_flags"] is None
    assert got["async_dispatch"] is True
    assert got["threefry_rolled"]  # jax's own lowering
    assert got["cache"] is None


def test_tune_cpu_after_importing_jax_takes_effect(tmp_path):
    got = report(tmp_path, "import jax, prism_marl\nprism_marl.tune_cpu()\nprism_marl.tune_cpu()")
    assert got["xla_flags"] == EIGEN_FLAG  # once, however often it is called
    assert got["async_dispatch"] is False
    assert got["ready_on_return"]  # synchronous dispatch: the call returned a finished array
    assert not got["threefry_rolled"]
    assert got["cache"] == str(tmp_path / "cache")


def test_xla_reads_its_flags_when_the_backend_starts_not_at_import():
    """What tune_cpu relies on to be called after `import jax`: a flag set after the import
    still reaches XLA (an unknown one stops the process at the first computation)."""
    program = (
        "import os, jax\n"
        "os.environ['XLA_FLAGS'] = '--xla_no_such_flag_set_after_import=1'\n"
        "jax.numpy.ones(1).block_until_ready()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert "xla_no_such_flag_set_after_import" in result.stderr


def test_a_user_eigen_setting_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    prism_marl.tune_cpu()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=true"


def test_tuning_after_the_backend_started_warns(monkeypatch):
    """This process computed already: flags and dispatch mode can no longer reach XLA."""
    jax.numpy.ones(1).block_until_ready()
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    jax.config.update("jax_cpu_enable_async_dispatch", True)
    try:
        with pytest.warns(RuntimeWarning, match="already runs.*XLA_FLAGS and synchronous"):
            prism_marl.tune_cpu()
    finally:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    assert EIGEN_FLAG in os.environ["XLA_FLAGS"]  # for the processes it starts
