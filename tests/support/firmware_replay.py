"""Replay a scripted session through the firmware core and print every byte it sends.

Runs under CPython (imported by the tests) and under MicroPython (copied into the
WebAssembly port's file system by ``tests/support/micropython/run.mjs``). The two
transcripts must be identical, byte for byte.

A script is a JSON list of steps:
``["boot", t_us]``, ``["rx", t_us, hex]``, ``["sample", t_us, raw, open, exc_mv]``,
``["tick", t_us]``. Each step prints ``t_us interlock hex-out`` when it produced
output or moved the line.
"""

import json

from firmware_bridge.firmware import core


def replay(script_json: str) -> list[str]:
    lines: list[str] = []
    moves: list[int] = []
    bridge = core.BridgeCore(
        0x1B2D0001, 0, 5369.0, on_interlock=lambda on: moves.append(1 if on else 0)
    )
    for step in json.loads(script_json):
        kind, t_us = step[0], step[1]
        if kind == "boot":
            bridge.boot(t_us)
        elif kind == "rx":
            bridge.receive(bytes.fromhex(step[2]), t_us)
        elif kind == "sample":
            bridge.sample(step[2], t_us, bool(step[3]), step[4])
        else:
            bridge.tick(t_us)
        out = bridge.take_output()
        if out or moves:
            moved = "".join(str(m) for m in moves) or "-"
            lines.append(f"{t_us} {moved} {out.hex()}")
            moves.clear()
    counts = f"flags={bridge.flags} overruns={bridge.overruns} rx_errors={bridge.rx_errors}"
    lines.append("end " + counts)
    return lines


def main(path: str) -> None:
    with open(path) as f:
        for line in replay(f.read()):
            print(line)
