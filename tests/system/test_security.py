"""The threats of docs/security.md, each with the test that shows its mitigation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import websockets

from controller.cli import build_parser
from dashboard.guards import MAX_TELEMETRY_CLIENTS
from tests.support.served_app import (
    AUTH,
    BODY,
    TOKEN,
    Served,
    served,
    spawn_serve,
    start_running,
)

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


async def test_unauthenticated_or_oversized_requests_never_reach_the_loop_and_stop_nothing(
    served: Served,
) -> None:
    """Issue 18, item 8: a 40 MB body without a token was read for a second before its 401,
    and 200 WebSocket clients that never read ended an injection in link_lost. The refusal
    now comes from the headers; the body limit holds with a token too; telemetry clients
    are bounded; and a running injection does not notice any of it."""
    http = served.http
    injection_id = await start_running(served, volume_ml=1.0, rate_ml_min=1.0)
    big = b'{"volume_ml": 1, "pad": "' + b"x" * (40 * 1024 * 1024) + b'"}'
    no_token = await http.post("/api/v1/injections", content=big)
    assert no_token.status_code == 401
    too_big = await http.post("/api/v1/injections", content=big, headers=AUTH)
    assert too_big.status_code == 413
    sockets = []
    base = served.base.replace("http://", "ws://")
    refused = 0
    for _ in range(MAX_TELEMETRY_CLIENTS + 8):
        socket = await websockets.connect(f"{base}/api/v1/telemetry")
        sockets.append(socket)
    for socket in sockets:
        try:
            async with asyncio.timeout(2.0):
                await socket.recv()
        except websockets.ConnectionClosed as closed:
            refused += closed.rcvd is not None and closed.rcvd.code == 1013
    for socket in sockets:
        await socket.close()
    assert refused >= 8
    view = (await http.get(f"/api/v1/injections/{injection_id}")).json()
    assert view["state"] == "running" and view["alarm"] is None
    limited = await http.get("/api/v1/injections", params={"limit": 10_000})
    assert limited.status_code == 422 and "limit" in limited.text


async def test_a_page_reaching_us_under_another_name_is_refused(served: Served) -> None:
    """DNS rebinding (issue 18, item 9): evil.example resolving to 127.0.0.1 passes an
    Origin-equals-Host check; the Host allowlist does not let it read the record."""
    http = served.http
    rebound = await http.get("/api/v1/state", headers={"Host": "evil.example"})
    assert rebound.status_code == 400
    assert (await http.get("/api/v1/state")).status_code == 200
