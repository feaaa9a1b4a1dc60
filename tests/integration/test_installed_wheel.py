"""A non-editable install works away from the checkout: the wheel that ``pip`` builds from
this tree carries the catalogs, the scenarios and the page, and the installed controller
and simulator load them (before, ``config/`` stayed behind in the checkout and an
installed controller could not find a syringe)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what a fresh clone would not hold: setuptools' own build/ would hand a stale tree to pip
NOT_SOURCE = (".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".*_cache")
PROBE = """
import controller, dashboard
from controller.procedure.catalog import load_drugs, load_needles, load_syringes
from simulator.scenario import load_scenario
from pathlib import Path
print(Path(controller.__file__).parent.parent)
print(len(load_syringes()), len(load_needles()), len(load_drugs()))
print(load_scenario("normal-liver-saline-1ml").name)
print((Path(dashboard.__file__).parent / "static" / "index.html").is_file())
"""


def _run(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_the_installed_wheel_finds_its_catalogs_scenarios_and_page(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    _run(*pip, "wheel", str(source), "--no-deps", "-w", str(tmp_path / "wheel"), cwd=tmp_path)
    [wheel] = (tmp_path / "wheel").glob("injectctl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "config/syringes.toml" in names and "config/scenarios/fault-backflow.toml" in names
    target = tmp_path / "installed"
    _run(*pip, "install", "--no-deps", "--target", str(target), str(wheel), cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(target)}
    lines = _run(sys.executable, "-P", "-c", PROBE, cwd=tmp_path, env=env).splitlines()
    assert lines[0] == str(target), "the probe imported the checkout, not the installed wheel"
    syringes, needles, drugs = (int(n) for n in lines[1].split())
    assert syringes > 0 and needles > 0 and drugs > 0
    assert lines[2:] == ["normal-liver-saline-1ml", "True"]
