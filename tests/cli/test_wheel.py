"""Installed the way users install it: build the wheel, install it into a fresh virtual environment and run
the commands from an empty directory, far from the source tree.

Kept fast and offline: the wheel is built from a copy of the sources (so nothing is written into the
repository) with this environment's setuptools (no build isolation), installed with ``--no-deps``, and the
new environment borrows the dependencies of this one through a ``.pth`` file added *after* the install, so
``outreach`` itself can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import outreach

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin directory."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "outreach", source / "outreach",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".registry.lock"))
    dist = base / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(dist), str(source)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    [wheel] = dist.glob("outreach-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in ("outreach/defaults/prompts/registry.yaml", "outreach/defaults/prompts/history/upsell/v1.md.j2",
                    "outreach/defaults/sequences/upsell.yaml", "outreach/defaults/demo/events.jsonl",
                    "outreach/defaults/eval/eval.yaml", "outreach/defaults/rules.yaml",
                    "outreach/migrations/versions/0001_review_queue.py"):
        assert shipped in names, shipped
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    borrowed = [path for path in site.getsitepackages() if Path(path).is_dir()]
    (Path(purelib) / "_outreach_test_deps.pth").write_text("\n".join(borrowed) + "\n")
    return venv / "bin"


def test_the_wheel_works_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OUTREACH_", "OPENAI_", "PYTEST_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    where = _run([str(installed / "python"), "-c", "import outreach; print(outreach.__file__)"], empty, env)
    assert where.returncode == 0 and where.stdout.startswith(str(installed.parent)), where.stdout + where.stderr
    outreach_bin = str(installed / "outreach")
    version = _run([outreach_bin, "--version"], empty, env)
    assert version.stdout == f"outreach {outreach.__version__}\n"

    commands = [
        ["demo", "--no-serve"],
        ["draft", "--data", "demo", "--as-of", "2026-11-20"],
        ["prompts", "list"],
        ["sequences", "check"],
        ["eval"],
    ]
    results = {}
    for command in commands:
        result = results[command[0]] = _run([outreach_bin, *command], empty, env)
        assert result.returncode == 0, f"outreach {' '.join(command)}:\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
    assert "40 accounts: 18 ready, 12 nurture, 10 not fit" in results["demo"].stdout
    assert len(results["demo"].stdout.splitlines()) < 200  # piped: one line per row, nothing wrapped
    assert "Prompts: packaged defaults" in results["prompts"].stderr
    assert (empty / "outreach.db").exists() and (empty / "reports" / "eval-upsell.html").exists()

    assert _run([outreach_bin, "init"], empty, env).returncode == 0
    listed = _run([outreach_bin, "prompts", "list"], empty, env)
    assert listed.returncode == 0 and f"Prompts: workspace copy {empty.resolve() / 'prompts'}" in listed.stderr
    explained = _run([outreach_bin, "explain", "--as-of", "2026-11-20"], empty, env)
    assert explained.returncode == 0 and explained.stdout.splitlines()[-1].startswith("40 accounts: 18 ready")
    refused = _run([outreach_bin, "prompts", "save", "upsell", "--note", "x"], empty / "data", env)
    assert refused.returncode == 2 and "outreach init" in refused.stderr
