"""The threats of docs/security.md, each with the test that shows its mitigation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.cli import build_parser
from tests.support.served_app import AUTH, BODY, TOKEN, Served, served, spawn_serve

__all__ = ["served"]  # the fixture


def test_serve_listens_on_loopback_unless_told_otherwise() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"


async def test_another_page_in_the_operators_browser_cannot_control(served: Served) -> None:
    """Cross-site requests: a form or a no-cors fetch cannot carry the Authorization header,
    and the app grants no CORS, so a browser never sends a preflighted one."""
    http = served.http
    evil = {"Origin": "http://evil.example"}
    form = await http.post(
        "/api/v1/injections",
        content=b"volume_ml=1",
        headers={**evil, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 401
    preflight = await http.options(
        "/api/v1/injections",
        headers={
            **evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    read = await http.get("/api/v1/state", headers=evil)
    assert "access-control-allow-origin" not in read.headers  # no other page reads it either
    assert (await http.post("/api/v1/injections", json=BODY, headers=AUTH)).status_code == 201


async def test_a_token_given_in_the_environment_is_never_printed(tmp_path: Path) -> None:
    serve = await spawn_serve(
        tmp_path / "db.sqlite", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert serve.stdout is not None
    async with asyncio.timeout(30):
        first = await serve.stdout.readline()
    serve.terminate()
    out, err = await serve.communicate()
    assert b"dashboard at" in first and serve.returncode == 0
    assert TOKEN.encode() not in first + out + err
