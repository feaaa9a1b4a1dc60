"""Issue 21: the page works however injectctl is installed. Every asset the page loads
from ``/static`` is a file in the ``dashboard`` package that the package data ships (a
plain ``pip install`` once served a page without its chart, from ``node_modules``)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "dashboard"


def test_every_asset_the_page_loads_is_shipped_with_the_package() -> None:
    page = (DASHBOARD / "static" / "index.html").read_text()
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', page)
    assert "vendor/uPlot.iife.min.js" in assets and "vendor/uPlot.min.css" in assets
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["package-data"]["dashboard"]
    for asset in assets:
        relative = f"static/{asset}"
        assert (DASHBOARD / relative).is_file(), f"{relative} is not in the package"
        assert any(fnmatch.fnmatch(relative, p) for p in shipped), f"{relative} not shipped"
    assert "node_modules" not in page
