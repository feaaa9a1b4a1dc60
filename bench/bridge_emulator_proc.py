"""The bridge emulator in its own process, logging when each SAMPLES index left it.

Used by ``bench.bridge_bench`` so that the emulator does not share the host's
event loop or its GIL. Prints ``ready`` once the link exists; on SIGTERM writes
``{index: t_write_mono_s}`` as JSON to the output file and exits.
"""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import sys
import time
from pathlib import Path

from firmware_bridge.ptb1 import FrameReceiver
from simulator.bridge_emulator import BridgeEmulator


async def main(link: Path, out: Path) -> None:
    written: dict[int, float] = {}
    emu = BridgeEmulator(link, drift_ppm=50.0)
    receiver = FrameReceiver()
    original = emu.link.write

    def write_and_log(data: bytes) -> None:
        original(data)
        t = time.monotonic()
        for ptype, _seq, payload in receiver.feed(data):
            if ptype == 0x02:
                index, _t_us, _period, n = struct.unpack_from("<IIHB", payload)
                for k in range(n):
                    written[index + k] = t

    emu.link.write = write_and_log  # type: ignore[method-assign]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await emu.start()
    print("ready", flush=True)
    await stop.wait()
    await emu.stop()
    await asyncio.to_thread(out.write_text, json.dumps(written))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
