"""Transducer bridge benchmarks.

1. Host CPU per 1000 samples decoded and published (the control path's head):
   pre-encoded SAMPLES frames fed to the client's receive callback, one frame per
   call as a 1 kHz stream arrives, against two baselines in the same run: the bare
   PTB/1 receiver (framing and CRC only) and the generic typed decoder.
2. Latency from a sample leaving the emulator (its own process) to the host
   publishing it to listeners, against the baseline of the same bytes merely
   arriving at a bare transport's callback.

Run: ``make bench`` (or ``.venv/bin/python -m bench.bridge_bench``).
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import summary_us
from drivers.transducer import Scale, TransducerBridge
from drivers.transport import open_serial
from firmware_bridge import messages as m
from firmware_bridge.ptb1 import FrameReceiver, encode_frame

REPEATS = 300
STREAM_S = 5.0


def _frames(per_frame: int) -> list[bytes]:
    frames = []
    for first in range(0, 1000, per_frame):
        n = min(per_frame, 1000 - first)
        payload = struct.pack("<IIHB", first, first * 1000, 1000, n)
        payload += struct.pack(f"<{n}i", *range(first * 5369, (first + n) * 5369, 5369))
        frames.append(encode_frame(m.DeviceType.SAMPLES, first & 0xFF, payload))
    return frames


def _client() -> TransducerBridge:
    bridge = TransducerBridge(staleness_s=0.02, idle_staleness_s=1.5, command_timeout_s=0.25)
    bridge.scale = Scale(0.0, 5369.0, "bench")
    bridge.clock.add(0.0, 0.0001, 0)
    bridge.clock.add(1.0, 1.0001, 1_000_000)
    return bridge


def _time_per_1000(feed: object, frames: list[bytes]) -> list[float]:
    assert callable(feed)
    runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for frame in frames:
            feed(frame, 0.0)
        runs.append(time.perf_counter() - t0)
    return runs


def bench_cpu() -> None:
    print("host CPU per 1000 samples (one frame per receive callback)")
    for per_frame in (1, 12):
        frames = _frames(per_frame)
        bridge = _client()
        published = [0]

        def listener(
            index: int, t_s: float, pressure: float, raw: int, published: list[int] = published
        ) -> None:
            published[0] += 1

        bridge.add_sample_listener(listener)
        client = _time_per_1000(bridge.link.on_bytes, frames)
        assert published[0] == 1000 * REPEATS and bridge.stats.lost_samples == 0
        receiver = FrameReceiver()
        bare = _time_per_1000(lambda data, t, rx=receiver: rx.feed(data), frames)
        typed_rx = FrameReceiver()

        def typed(data: bytes, t: float, typed_rx: FrameReceiver = typed_rx) -> None:
            for ptype, _seq, payload in typed_rx.feed(data):
                m.decode_device(ptype, payload)

        generic = _time_per_1000(typed, frames)
        print(f"  {per_frame:2d}/frame client: decode+publish  {summary_us(client)}")
        print(f"  {per_frame:2d}/frame baseline: framing+CRC     {summary_us(bare)}")
        print(f"  {per_frame:2d}/frame baseline: typed decoder   {summary_us(generic)}")


async def _stream(link: str, record: dict[int, float], bare: bool) -> None:
    if bare:
        receiver = FrameReceiver()

        def on_bytes(data: bytes, t_rx: float) -> None:
            for ptype, _seq, payload in receiver.feed(data):
                if ptype == 0x02:
                    index, _t, _p, n = struct.unpack_from("<IIHB", payload)
                    for k in range(n):
                        record[index + k] = t_rx

        transport = await open_serial(link, 460800, on_bytes=on_bytes)
        ptype, payload = m.stream(1000, 1)
        transport.write_nowait(encode_frame(ptype, 0, payload))
        await asyncio.sleep(STREAM_S)  # the measurement window
        ptype, payload = m.stream(0, 1)
        transport.write_nowait(encode_frame(ptype, 1, payload))
        await transport.close()
        return
    bridge = await TransducerBridge.open(link)
    bridge.add_sample_listener(lambda i, t, p, raw: record.__setitem__(i, time.monotonic()))
    await bridge.start_stream(1000, 1)
    await asyncio.sleep(STREAM_S)  # the measurement window
    await bridge.close()


def bench_latency() -> None:
    print(f"emulator (own process) write -> host, 1000 Hz, 1 sample/frame, {STREAM_S:.0f} s")
    for bare in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            link, out = Path(tmp) / "bridge", Path(tmp) / "written.json"
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.bridge_emulator_proc", str(link), str(out)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            received: dict[int, float] = {}
            try:
                asyncio.run(_stream(str(link), received, bare))
            finally:
                proc.terminate()
                proc.wait(10)
            written = {int(k): v for k, v in json.loads(out.read_text()).items()}
        latency = [received[i] - written[i] for i in received if i in written]
        lost = len(written) - len(received)
        what = "baseline: bytes at transport " if bare else "client: sample published     "
        print(f"  {what} {summary_us(latency)}  lost {lost}")


if __name__ == "__main__":
    bench_cpu()
    bench_latency()
