"""The host bridge client against the bridge emulator (the firmware core) over a real pty."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from pathlib import Path

import pytest

from drivers.ne1000 import NE1000
from drivers.ne1000_protocol import PumpStatus
from drivers.transducer import Scale, TransducerBridge
from drivers.transducer_link import ImplausibleBridge, InterlockReleaseRefused, ProtocolMismatch
from firmware_bridge.messages import StatusFlag, TripReason
from simulator.bridge_emulator import BridgeEmulator
from simulator.ne1000_emulator import NE1000Emulator
from tests.support.bridge_helpers import Recorder

# Alone: the 20 ms staleness rule and host stalls are this module's subject.
pytestmark = pytest.mark.exclusive

F = StatusFlag


async def test_handshake_reads_hello_and_syncs_the_clock(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    assert bridge.hello is not None
    assert (bridge.hello.proto, bridge.hello.device_id) == (1, bridge_emulator.device_id)
    assert bridge.scale.gain_counts_per_mmhg == bridge.hello.nominal_gain
    assert "not calibrated" in bridge.scale.source
    assert bridge.clock.ready and bridge.stats.min_rtt_s < 0.05
    rtt = await bridge.ping()
    assert 0 < rtt < 0.1


async def test_a_bridge_speaking_another_protocol_is_refused(tmp_path: Path) -> None:
    async with BridgeEmulator(tmp_path / "bridge") as emu:
        emu.core.proto = 2
        with pytest.raises(ProtocolMismatch, match="PTB/2"):
            await TransducerBridge.open(emu.path)


@pytest.mark.parametrize(
    ("gain", "why"),
    [
        (0.0, "not a positive number"),
        (float("nan"), "not a positive number"),
        (-5369.0, "not a positive number"),
        (0.5, "resolves less than a mmHg"),
        (50_000.0, "full scale of 168 mmHg"),
    ],
)
async def test_a_bridge_whose_hello_gain_no_transducer_has_is_refused(
    tmp_path: Path, gain: float, why: str
) -> None:
    """Issue 18, item 11: a gain of 0 raised on every sample after the staleness clock was
    fed (no samples, no alarm); NaN made every pressure NaN, so over-pressure never
    tripped. Both are refused at the handshake, before a sample is taken."""
    async with BridgeEmulator(tmp_path / "bridge") as emu:
        emu.core.nominal_gain = gain
        with pytest.raises(ImplausibleBridge, match=why):
            await TransducerBridge.open(emu.path)


def test_a_scale_that_is_not_a_number_cannot_be_made() -> None:
    for zero, gain in ((0.0, 0.0), (0.0, float("nan")), (float("inf"), 5369.0), (0.0, -1.0)):
        with pytest.raises(ValueError, match="not a"):
            Scale(zero, gain, "test")
    assert Scale(10.0, 5369.0, "test").to_mmhg(10.0 + 5369.0) == 1.0


async def test_streams_1000_hz_for_three_seconds_without_losing_a_sample(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    bridge_emulator.set_pressure(40.0)
    await bridge.start_stream(1000, 1)
    await rec.more_samples(3000, timeout_s=10)
    indexes = [s[0] for s in rec.samples]
    assert indexes == list(range(len(indexes)))
    assert bridge.stats.lost_samples == 0 and bridge.stats.rx_errors == 0
    assert not [e for e in rec.events if e.kind in ("link_lost", "samples_lost")]
    # device times mapped onto host time: 1 ms apart as the (150 ppm fast) device clock says
    times = [s[1] for s in rec.samples]
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert statistics.median(steps) == pytest.approx(0.001, rel=1e-3)
    # each sample is published after it was taken, and soon after
    latency = sorted(a - s[1] for a, s in zip(rec.arrivals, rec.samples, strict=True))
    assert latency[len(latency) // 100] > -0.001 and latency[len(latency) // 2] < 0.01
    # pressure in nominal mmHg: the emulated transducer's zero and gain errors show through
    nominal = statistics.fmean(s[2] for s in rec.samples[-500:])
    expected = (40.0 + 6.0) * 1.012
    assert nominal == pytest.approx(expected, abs=0.5)


async def test_batched_stream_keeps_every_index(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    await bridge.start_stream(1000, 8)
    await rec.more_samples(800)
    assert [s[0] for s in rec.samples] == list(range(len(rec.samples)))
    with pytest.raises(ValueError, match="staleness"):
        await bridge.start_stream(500, 12)


async def test_every_status_flag_reaches_the_host(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    faults = bridge_emulator.faults

    async def flag_seen(flag: StatusFlag, present: bool = True) -> None:
        def seen() -> bool:
            status = bridge.status
            return status is not None and (flag in status.flags) == present

        await rec.until(seen)

    await bridge.start_stream(1000, 1)
    await flag_seen(F.STREAMING)
    faults.open_sensor()
    await flag_seen(F.SENSOR_OPEN)
    faults.clear()
    faults.saturate()
    await flag_seen(F.ADC_SATURATED)
    faults.clear()
    faults.excitation(2000)
    await flag_seen(F.EXCITATION_FAULT)
    faults.clear()
    await flag_seen(F.EXCITATION_FAULT, present=False)
    await bridge.set_trip_limit(500.0, 3)
    await flag_seen(F.TRIP_ARMED)
    await bridge.arm_watchdog(100)
    await flag_seen(F.WATCHDOG_ARMED)
    await bridge.assert_interlock()
    await flag_seen(F.INTERLOCK_ASSERTED)
    await bridge.release_interlock()
    await flag_seen(F.INTERLOCK_ASSERTED, present=False)
    await bridge.stop_stream()
    await bridge.close(graceful=False)  # the host goes quiet: the watchdog expires
    await _until_interlock(bridge_emulator)
    assert bridge_emulator.core.flags & F.WATCHDOG_EXPIRED
    faults.reboot()
    assert bridge_emulator.core.flags & F.BOOTED
    assert [e.flags for e in rec.events if e.kind == "status" and e.flags is not None]


async def test_watchdog_expiry_asserts_the_interlock_and_stops_the_pump(tmp_path: Path) -> None:
    async with NE1000Emulator(tmp_path / "pump") as pump_emu:
        pump_emu_stop = pump_emu.external_stop
        async with BridgeEmulator(tmp_path / "bridge", on_interlock=pump_emu_stop) as bridge_emu:
            pump = await NE1000.open(pump_emu.path)
            bridge = await TransducerBridge.open(bridge_emu.path)
            try:
                await pump.set_diameter_mm(12.0)
                await pump.set_rate_ml_min(1.0)
                await pump.set_volume_ml(1.0)
                await pump.run()
                assert (await pump.status()).moving
                await bridge.arm_watchdog(50)
                t_quiet = bridge_emu.loop_time()
                await bridge.close(graceful=False)  # the host dies
                rec_pump = await _until_interlock(bridge_emu)
                assert rec_pump - t_quiet == pytest.approx(0.05, abs=0.03)
                assert await pump.status() is PumpStatus.STOPPED
                assert bridge_emu.core.flags & F.WATCHDOG_EXPIRED
            finally:
                await pump.close()


async def _until_interlock(emu: BridgeEmulator) -> float:
    """Wait on the emulator's interlock line, by its own callback (no polling sleep)."""
    moved = asyncio.Event()
    inner = emu.on_interlock

    def hook(asserted: bool) -> None:
        if inner is not None:
            inner(asserted)
        if asserted:
            moved.set()

    emu.on_interlock = hook
    async with asyncio.timeout(2):
        await moved.wait()
    return emu.loop_time()


async def test_trip_limit_needs_consecutive_samples_and_release_waits(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    await bridge.start_stream(1000, 1)
    raw_limit = await bridge.set_trip_limit(300.0, 3)
    over, under = raw_limit + 1000, raw_limit - 1000
    bridge_emulator.queue_raw([over, over, under, over, over, under])
    await rec.more_samples(50)
    assert not [e for e in rec.events if e.kind == "trip"]
    bridge_emulator.set_pressure(400.0)
    trip = await rec.event("trip")
    assert trip.trip is not None and trip.trip.reason is TripReason.OVER_LIMIT
    assert trip.trip.raw >= raw_limit and bridge_emulator.interlock
    with pytest.raises(InterlockReleaseRefused):
        await bridge.release_interlock()
    bridge_emulator.set_pressure(0.0)
    await rec.more_samples(10)
    await bridge.release_interlock()
    assert not bridge_emulator.interlock


async def test_interlock_from_the_stop_path_is_a_host_trip(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    bridge.assert_interlock_nowait()
    trip = await rec.event("trip")
    assert trip.trip is not None and trip.trip.reason is TripReason.HOST_COMMAND
    assert bridge_emulator.interlock


async def test_garbage_mid_stream_costs_at_most_one_frame(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    await bridge.start_stream(1000, 1)
    await rec.more_samples(100)
    bridge_emulator.faults.inject_garbage(40)
    await rec.until(lambda: bridge.stats.rx_errors > 0)
    await rec.more_samples(200)
    assert bridge.stats.lost_samples <= 1
    assert not [e for e in rec.events if e.kind == "link_lost"]


async def test_reboot_mid_stream_is_reported_and_recovered(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    await bridge.start_stream(1000, 1)
    await rec.more_samples(100)
    bridge_emulator.faults.reboot()
    event = await rec.event("rebooted")
    assert "rebooted" in event.detail and not bridge.streaming
    await bridge.recover_from_reboot()
    first = len(rec.samples)
    await bridge.start_stream(1000, 1)
    await rec.more_samples(100)
    assert rec.samples[first][0] == 0


async def test_a_silent_link_is_lost_within_the_staleness_limit(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    await bridge.start_stream(1000, 1)
    await rec.more_samples(200)
    bridge_emulator.faults.go_silent()
    lost = await rec.event("link_lost")
    delay_s = lost.t_mono_s - bridge.last_sample_rx_s
    assert bridge.staleness_s <= delay_s < bridge.staleness_s + 0.015, lost.detail
    assert not bridge.link_ok
    bridge_emulator.faults.clear()
    await rec.event("link_restored")


async def test_a_host_stall_that_ends_at_the_deadline_is_not_a_silent_bridge(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    """The CI failure's mechanism: the host holds its loop from one sample until just past
    the staleness deadline. A bridge in this process (the test rigs) writes its catch-up
    frames in the same iteration the staleness timer runs, and the kernel hands them to the
    port a moment later; that silence was the host's, not the bridge's."""
    rec = Recorder(bridge)
    stall_s = bridge.staleness_s + 0.0005
    stalled_at = set(range(100, 2100, 100))

    def stall(index: int, *_: object) -> None:
        if index in stalled_at:
            time.sleep(stall_s)  # the loop blocked on purpose, as a GC or a busy CPU would

    remove = bridge.add_sample_listener(stall)
    try:
        await bridge.start_stream(1000, 1)
        await rec.until(lambda: bool(rec.samples) and rec.samples[-1][0] >= 2100, timeout_s=10)
    finally:
        remove()
    assert not [e.detail for e in rec.events if e.kind == "link_lost"]
    assert bridge.link_ok


async def test_an_idle_bridge_that_goes_quiet_is_lost(tmp_path: Path) -> None:
    async with BridgeEmulator(tmp_path / "bridge") as emu:
        bridge = await TransducerBridge.open(emu.path, idle_staleness_s=0.3)
        try:
            rec = Recorder(bridge)
            emu.faults.go_silent()
            lost = await rec.event("link_lost")
            assert "no packet" in lost.detail
        finally:
            await bridge.close()


async def test_stuck_and_noisy_transducer_faults(
    bridge: TransducerBridge, bridge_emulator: BridgeEmulator
) -> None:
    rec = Recorder(bridge)
    await bridge.start_stream(1000, 1)
    await rec.more_samples(50)
    bridge_emulator.faults.stick()
    await rec.more_samples(100)
    assert len({s[3] for s in rec.samples[-80:]}) == 1, "a stuck ADC repeats one code"
    bridge_emulator.faults.clear()
    bridge_emulator.faults.noise(5.0)
    await rec.more_samples(500)
    assert statistics.pstdev(s[2] for s in rec.samples[-400:]) == pytest.approx(5.06, rel=0.2)
