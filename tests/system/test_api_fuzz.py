"""schemathesis against the OpenAPI schema of a running ``injectctl serve``: no 500s, no crash."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.support.cli import run_cli

# Alone: schemathesis keeps a core busy for over a minute; with it in the two-at-a-time
# pass a neighbour failed in each of two runs (docs/performance.md, session 31).
pytestmark = pytest.mark.exclusive

BIN = Path(sys.executable).parent
# examples per operation: a few in make test (every route, every parameter kind reached),
# many more in make soak
EXAMPLES = int(os.environ.get("INJECTCTL_API_FUZZ_EXAMPLES", "6"))


@pytest.mark.timeout(240 + 10 * EXAMPLES)  # 6 examples: about 40 s alone on this machine
async def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    env = {**os.environ, "INJECTCTL_TOKEN": "fuzz-token"}
    # an automation person, who may do everything the API offers (calibration included)
    code, printed, refused = await run_cli(
        "users", "add", "fuzz", "--role", "automation", "--db", str(tmp_path / "db")
    )
    assert code == 0, refused
    token = printed.strip().splitlines()[-1]
    serve = await asyncio.create_subprocess_exec(
        str(BIN / "injectctl"),
        "serve",
        "--sim",
        "--port",
        "8798",
        "--db",
        str(tmp_path / "db"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert serve.stdout is not None
    try:
        async with asyncio.timeout(30):
            assert b"dashboard at" in await serve.stdout.readline()
        fuzz = await asyncio.create_subprocess_exec(
            str(BIN / "schemathesis"),
            "run",
            "http://127.0.0.1:8798/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(EXAMPLES),
            # one operation at a time (83 s; 35 s with four): with four worker threads the
            # fuzzer itself failed a fresh clone's run, after all 1569 of its cases had
            # passed, with "AST constructor recursion depth mismatch" from hypothesis's
            # ast.parse: CPython 3.11.7's race between threads (python/cpython#106905)
            "--workers",
            "1",
            # provoking faults breaks the simulated devices on purpose (a silent bridge then
            # answers 503, rightly); its input validation is covered in test_api_panels.py
            "--exclude-path",
            "/api/v1/sim/faults",
            # a run on the emulated gravimetric bench keeps emulators busy in the server for
            # as long as the fuzzer asks (up to 240 min at 1x); covered in test_gravimetric_api
            "--exclude-path",
            "/api/v1/calibration/pump/gravimetric/run",
            "-H",
            f"Authorization: Bearer {token}",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(fuzz.communicate(), 180 + 10 * EXAMPLES)
        text = out.decode()
        assert fuzz.returncode == 0, text[-3000:]
        tested = re.search(r"Tested: (\d+)", text)
        assert tested is not None and int(tested.group(1)) >= 25, text[-3000:]  # every route
        assert "Server error" not in text
        assert serve.returncode is None, "the server must survive whatever it was sent"
    finally:
        serve.terminate()
        _, err = await asyncio.wait_for(serve.communicate(), 30)
    assert serve.returncode == 0 and b"Traceback" not in err
