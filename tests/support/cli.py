"""Running the ``injectctl`` console script as a subprocess, as an operator would."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

INJECTCTL = str(Path(sys.executable).parent / "injectctl")


async def run_cli(*args: str, timeout_s: float = 30.0) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``injectctl *args``."""
    proc = await asyncio.create_subprocess_exec(
        INJECTCTL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(timeout_s):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
