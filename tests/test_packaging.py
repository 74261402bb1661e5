"""Packaging: every import is declared, the lock sits inside the declared ranges, and the built
wheel installs into a fresh environment and trains there, outside the repository."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = {"ray", "brax", "wandb"}
"""The extras' own distributions, left out of the fresh environment: the base install."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(group: str) -> list[Requirement]:
    """The requirements of ``group``: "" for the dependencies, else an extra's name."""
    texts = PROJECT["dependencies"] if not group else PROJECT["optional-dependencies"][group]
    return [Requirement(text) for text in texts]


def declared(group: str) -> set[str]:
    """Distributions ``group`` installs, through the extras it names of this package too."""
    names = set()
    for requirement in requirements(group):
        if canonical(requirement.name) == canonical(PROJECT["name"]):
            names |= set().union(*(declared(extra) for extra in requirement.extras))
        else:
            names.add(canonical(requirement.name))
    return names


def module_trees(folder: Path) -> list[ast.Module]:
    return [ast.parse(path.read_text()) for path in sorted(folder.rglob("*.py"))]


def third_party_imports(folder: Path, local: str) -> set[str]:
    """Top-level names of the modules imported anywhere under ``folder`` (no stdlib, no local)."""
    names = set()
    for tree in module_trees(folder):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("prism_marl", local)}


def undeclared(modules: set[str], allowed: set[str]) -> list[str]:
    """The modules of ``modules`` no distribution in ``allowed`` provides."""
    provided_by = importlib.metadata.packages_distributions()
    return sorted(
        module
        for module in modules
        if not {canonical(d) for d in provided_by.get(module, [])} & allowed
    )


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            pins[canonical(name)] = version
    return pins


def test_every_import_of_the_package_is_declared():
    everything = set().union(*(declared(g) for g in ["", *PROJECT["optional-dependencies"]]))
    assert undeclared(third_party_imports(ROOT / "src" / "prism_marl", "tests"), everything) == []


def test_optional_imports_name_an_extra_that_installs_them():
    """``require_extra("brax", "mabrax", ...)``: the mabrax extra installs brax."""
    calls = [
        (node.args[0].value, node.args[1].value)
        for tree in module_trees(ROOT / "src" / "prism_marl")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) in ("import_extra", "require_extra")
        and all(isinstance(arg, ast.Constant) for arg in node.args[:2])
    ]
    assert {module for module, _ in calls} == {"ray", "brax", "mujoco.mjx"}
    for module, extra in calls:
        top = module.partition(".")[0]  # distributions are indexed by top-level module
        assert undeclared({top}, declared(extra)) == [], (module, extra)


def skipped_when_absent(folder: Path) -> set[str]:
    """Top-level names of the modules ``pytest.importorskip`` asks for under ``folder``."""
    return {
        node.args[0].value.split(".")[0]
        for tree in module_trees(folder)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "importorskip"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def test_the_tests_imports_are_declared_for_dev():
    """Except what a test skips without: id-marl-eval cannot install beside the lock
    (decision 0043)."""
    tests = ROOT / "tests"
    imported = third_party_imports(tests, "tests") - skipped_when_absent(tests)
    assert undeclared(imported, declared("") | declared("dev")) == []


def test_the_lock_pins_everything_ci_installs_inside_the_declared_ranges():
    pins = lock()
    for group in ("", "ray", "mabrax", "mamujoco", "wandb", "dev"):
        for requirement in requirements(group):
            name = canonical(requirement.name)
            if name == canonical(PROJECT["name"]):
                continue
            assert name in pins, f"{name} ({group or 'dependencies'}) is not in requirements.lock"
            assert requirement.specifier.contains(pins[name]), (name, pins[name])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of what it is built from (no build files in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=junk)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (built,) = dist.glob("prism_marl-*.whl")
    return built


def test_the_wheel_holds_the_package_and_its_license_and_no_tests(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {
        str(path.relative_to(ROOT / "src"))
        for path in (ROOT / "src" / "prism_marl").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert package <= names  # every module, and py.typed: the only file that is not Python
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "Copyright 2026 The prism-marl authors" in (ROOT / "LICENSE").read_text()


TINY_TRAIN = [
    "train", "--env", "lbf:8x8-2p-2f-coop", "--env.episode-limit", "10", "--num-seeds", "1",
    "--total-steps", "96", "--eval-interval", "64", "--eval-episodes", "2",
    "--final-eval-episodes", "2", "--algo.num-envs", "4", "--algo.rollout-length", "8",
    "--algo.hidden-sizes", "16", "16", "--algo.critic-hidden-sizes", "16",
    "--diversity-episodes", "0", "--no-progress", "--run-dir", "out",
]  # fmt: skip


@pytest.mark.slow(minutes=3)
def test_the_wheel_installs_and_trains_in_a_fresh_environment(wheel, tmp_path):
    """The lock's pins less the extras (ray, brax, wandb), then the wheel alone: `prism-marl
    --help`, a tiny LBF run and MaBrax's one-line error, from a directory outside the repository.
    The pins take 31-71 s to install from pip's cache, the whole test 1-2.7 min (2 cores,
    busy with other work, 2026-12-06)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    base = tmp_path / "base.lock"
    base.write_text(
        "".join(f"{n}=={v}\n" for n, v in lock().items() if n not in EXTRAS),
    )
    start = time.monotonic()
    subprocess.run([*pip, "-r", str(base)], check=True, capture_output=True)
    print(f"pins installed in {time.monotonic() - start:.0f} s")
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, capture_output=True)
    check = [str(venv / "bin" / "python"), "-m", "pip", "check"]
    checked = subprocess.run(check, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout  # the wheel's declared ranges hold the pins

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    command = str(venv / "bin" / "prism-marl")

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [command, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
        )

    assert run("--help").returncode == 0
    trained = run(*TINY_TRAIN)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "out" / "metrics.jsonl").read_text().strip()
    mabrax = run("train", "--env", "mabrax:hopper_3x1", "--run-dir", "never")
    assert mabrax.returncode == 2
    assert mabrax.stderr.strip().endswith("pip install 'prism-marl[mabrax]'"), mabrax.stderr
