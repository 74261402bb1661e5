"""The documentation's code runs: every ```python block of docs/python-api.md, in order."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.mark.slow(minutes=1)
def test_python_api_page_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOCS / "python-api.md")
    assert len(blocks) == 2
    namespace: dict = {"__name__": "docs_example"}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)
    summary, result = namespace["summary"], namespace["result"]
    assert summary["num_seeds"] == 2 and len(summary["final_returns"]) == 2
    assert len(result["return_per_seed"]) == 2
    assert all(0.0 <= r <= 1.0 for r in result["return_per_seed"])
    # The trained run's records reach the last evaluation for both seeds.
    assert sorted(r["seed"] for r in namespace["last"]) == [0, 1]
    assert namespace["hidden"]["U"].shape == (64, 16)  # U [O, R], R = rank 16


def test_every_decision_is_indexed_with_a_status():
    index = (DOCS / "decisions" / "README.md").read_text()
    for path in sorted((DOCS / "decisions").glob("0*.md")):
        row = next((line for line in index.splitlines() if f"]({path.name})" in line), None)
        assert row is not None, path.name
        status = row.rstrip(" |").rsplit("|", 1)[-1].strip()
        assert status.startswith(("active", "superseded")), row


def markdown_files() -> list[Path]:
    return [DOCS.parent / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(DOCS.parent)))
def test_relative_links_resolve(path):
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    missing = [t for t in local if not (path.parent / t).exists()]
    assert not missing, f"{path}: {missing}"


def test_readme_is_a_newcomers_page():
    text = (DOCS.parent / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    # The two commands, and the pages a newcomer is sent to.
    for needle in ("make run", "make test-all", "docs/python-api.md", "How to cite"):
        assert needle in text
