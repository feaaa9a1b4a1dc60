"""The firmware core under real MicroPython (WebAssembly port, run by Node) gives the same bytes.

The script feeds the spec's host vectors, a scripted 1 kHz sample sequence with a
trip, a refused and an accepted release, sensor faults, garbage, an unknown type,
a watchdog expiry and a clock that wraps, through the core on both interpreters.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from firmware_bridge import messages as m
from firmware_bridge.ptb1 import encode_frame
from tests.support.firmware_replay import replay

ROOT = Path(__file__).resolve().parents[3]
RUNNER = ROOT / "tests" / "support" / "micropython" / "run.mjs"
HOST_VECTORS = [
    "02 81 03 a6 35 00",  # HELLO_REQUEST seq 0
    "08 82 01 e8 03 01 09 4d 00",  # STREAM 1000 Hz, 1 per frame
    "09 83 02 ef be ad de 38 a4 00",  # PING 0xDEADBEEF
    "04 84 03 fa 03 53 36 00",  # WATCHDOG 250 ms
    "06 85 04 9d 70 3d 04 03 23 d7 00",  # TRIP_LIMIT 4026525 x 3
]
T0_US = 2**32 - 300_000  # the device clock wraps during the script


def _t(offset_us: int) -> int:
    return (T0_US + offset_us) & 0xFFFFFFFF


def _frame(command: tuple[int, bytes], seq: int) -> str:
    return encode_frame(command[0], seq, command[1]).hex()


def build_script() -> list[list[object]]:
    steps: list[list[object]] = [["boot", _t(0)]]
    steps += [["rx", _t(100 + 10 * k), v.replace(" ", "")] for k, v in enumerate(HOST_VECTORS)]
    t = 1000
    pressure = [int(5369 * (20 + 10 * k % 7)) for k in range(200)]
    pressure[120:124] = [4_100_000] * 4  # over the limit for four samples: trips at the third
    for k, raw in enumerate(pressure):
        steps.append(["sample", _t(t), raw, 0, 2500])
        if k % 50 == 0:  # feed the watchdog
            steps.append(["rx", _t(t + 1), _frame(m.ping(k), 5 + k // 50)])
        t += 1000
    steps.append(["rx", _t(t), _frame(m.interlock(False), 9)])  # refused? no: cause is gone
    steps.append(["rx", _t(t + 1), "0102030400" + _frame((0x99, b""), 10)])  # garbage, unknown
    steps.append(["sample", _t(t + 1000), 0, 1, 2500])  # sensor open: trip reason 3
    steps.append(["rx", _t(t + 1100), _frame(m.interlock(False), 11)])  # refused: sensor fault
    steps.append(["sample", _t(t + 2000), 2**23 - 1, 0, 2200])  # saturated, excitation low
    for k in range(3):  # the saturated sample was over the limit too: wait it out
        steps.append(["sample", _t(t + 3000 + 10 * k), 0, 0, 2500])
    steps.append(["rx", _t(t + 3100), _frame(m.interlock(False), 12)])  # released
    steps.append(["tick", _t(t + 400_000)])  # watchdog long expired; a periodic STATUS
    steps.append(["rx", _t(t + 400_100), _frame(m.stream(0, 1), 13)])
    return steps


def run_micropython(script_path: Path) -> list[str]:
    node = shutil.which("node")
    assert node, "Node.js runs the firmware core under MicroPython (make test installs it)"
    assert (ROOT / "node_modules" / "@micropython").is_dir(), "run `npm ci` (make test does)"
    snippet = script_path.with_suffix(".py")
    snippet.write_text("from tests.support import firmware_replay\nfirmware_replay.main('/data')\n")
    done = subprocess.run(
        [node, str(RUNNER), str(ROOT), str(snippet), str(script_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_core_gives_identical_bytes_on_micropython_and_cpython(tmp_path: Path) -> None:
    script = json.dumps(build_script())
    path = tmp_path / "script.json"
    path.write_text(script)
    cpython = replay(script)
    micropython = run_micropython(path)
    assert micropython == cpython
    # and the transcript is the one the script was written to produce
    moves = "".join(line.split()[1] for line in cpython[:-1]).replace("-", "")
    assert moves == "10101", "trip, release, sensor trip, release, watchdog trip"
    assert cpython[-1].startswith("end flags=") and "rx_errors=1" in cpython[-1]
    assert any(" 1 " in line and "06" in line for line in cpython)


def test_hardware_layer_compiles_under_micropython(tmp_path: Path) -> None:
    snippet = tmp_path / "compile.py"
    snippet.write_text(
        "for p in ('/fw/firmware_bridge/firmware/main.py', "
        "'/fw/firmware_bridge/firmware/ads1220.py'):\n"
        "    compile(open(p).read(), p, 'exec')\n"
        "    print('ok', p)\n"
    )
    node = shutil.which("node")
    assert node
    done = subprocess.run(
        [node, str(RUNNER), str(ROOT), str(snippet)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok /fw/") == 2
