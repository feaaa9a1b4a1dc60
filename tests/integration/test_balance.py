"""MT-SICS: codec under Hypothesis, driver byte for byte, emulator through the driver."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.balance import Balance, BalanceTimeout
from drivers.mtsics import (
    BalanceError,
    CommandRejected,
    NotPossibleNow,
    OutOfRange,
    encode_command,
    format_weight,
    parse_ack,
    parse_answer,
    parse_weight,
)
from simulator.balance_emulator import BalanceEmulator, BalanceSpec
from simulator.delivery import ScaledClock
from tests.support.scripted_peer import ScriptedPeer

HELLO = [
    (b"I2\r\n", b'I2 A "XS205DU 220.00000 g"\r\n'),
    (b"I4\r\n", b'I4 A "B034567890"\r\n'),
]


# ---------------------------------------------------------------- codec
@given(st.floats(-200, 220, allow_nan=False), st.booleans(), st.integers(0, 5))
def test_a_weight_reads_back_as_written(grams: float, stable: bool, decimals: int) -> None:
    weight = parse_weight(format_weight(grams, stable, decimals) + "\r\n")
    assert weight.stable is stable
    assert weight.grams == pytest.approx(grams, abs=0.51 * 10**-decimals)


@given(st.text(max_size=40))
def test_no_line_makes_the_parser_raise_anything_but_a_balance_error(line: str) -> None:
    with contextlib.suppress(BalanceError):
        parse_weight(line)


@pytest.mark.parametrize(
    ("line", "error", "words"),
    [
        ("S I", NotPossibleNow, "cannot do that now"),
        ("S +", OutOfRange, "overloaded"),
        ("S -", OutOfRange, "underloaded"),
        ("ES", CommandRejected, "syntax"),
        ("ET", CommandRejected, "transmission"),
        ("EL", CommandRejected, "logical"),
        ("S S      1.000 lb", BalanceError, "unknown unit"),
        ('I4 A "123"', BalanceError, "not a weight"),
    ],
)
def test_every_refusal_is_named(line: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        parse_weight(line)


def test_units_answers_and_acks() -> None:
    assert parse_weight("S S     123.4 mg").grams == pytest.approx(0.1234)
    assert parse_weight("S D      -0.00012 g").grams == pytest.approx(-0.00012)
    assert parse_answer('I4 A "B034567890"', "I4") == "B034567890"
    with pytest.raises(BalanceError, match="not an answer to I2"):
        parse_answer('I4 A "B034567890"', "I2")
    assert parse_ack("Z A", "Z") is True and parse_ack("ZI D", "ZI") is False
    with pytest.raises(NotPossibleNow):
        parse_ack("Z I", "Z")
    assert encode_command("SI") == b"SI\r\n"
    for bad in ("", "S\r\nZ", "Zé"):
        with pytest.raises(ValueError, match="not an MT-SICS command"):
            encode_command(bad)


# ---------------------------------------------------------------- driver, byte for byte
async def test_the_driver_sends_exactly_these_bytes(tmp_path: Path) -> None:
    script = [
        *HELLO,
        (b"Z\r\n", b"Z A\r\n"),
        (b"SI\r\n", b"S D      0.01234 g\r\n"),
        (b"S\r\n", b"S S      0.01240 g\r\n"),
        (b"S\r\n", b"S I\r\n"),
        (b"SI\r\n", b"S +\r\n"),
    ]
    with ScriptedPeer(tmp_path / "balance", script) as peer:
        balance = await Balance.open(peer.path)
        try:
            assert balance.identity is not None
            assert (balance.identity.model, balance.identity.serial_number) == (
                "XS205DU 220.00000 g",
                "B034567890",
            )
            await balance.zero()
            now = await balance.weigh_now()
            assert now.grams == pytest.approx(0.01234) and not now.stable
            assert (await balance.weigh_stable()).stable
            with pytest.raises(NotPossibleNow):
                await balance.weigh_stable()
            with pytest.raises(OutOfRange, match="overloaded"):
                await balance.weigh_now()
        finally:
            await balance.close()
        peer.check()


async def test_after_a_timeout_the_balance_is_reset_and_the_late_answer_dropped(
    tmp_path: Path,
) -> None:
    script = [
        *HELLO,
        (b"SI\r\n", b""),  # no answer in time...
        # ...it comes late, before the answer to the reset: the balance answers in order
        (b"@\r\n", b'S S      9.99999 g\r\nI4 A "B034567890"\r\n'),
        (b"SI\r\n", b"S S      0.50000 g\r\n"),
    ]
    with ScriptedPeer(tmp_path / "balance", script) as peer:
        balance = await Balance.open(peer.path, command_timeout_s=0.2)
        try:
            with pytest.raises(BalanceTimeout, match=r"no answer to SI in 0.2 s"):
                await balance.weigh_now()
            assert (await balance.weigh_now()).grams == pytest.approx(0.5)
        finally:
            await balance.close()
        peer.check()


async def test_a_balance_that_never_answers_the_reset_is_an_error_not_a_hang(
    tmp_path: Path,
) -> None:
    """A balance left on continuous output: the reset once read its lines for ever."""
    chatter = b"S D      1.00000 g\r\n" * 40
    script = [*HELLO, (b"SI\r\n", b""), (b"@\r\n", chatter)]
    with ScriptedPeer(tmp_path / "balance", script) as peer:
        balance = await Balance.open(peer.path, command_timeout_s=0.2)
        try:
            with pytest.raises(BalanceTimeout):
                await balance.weigh_now()
            with pytest.raises(BalanceError, match="no answer to the reset"):
                await balance.weigh_now()
        finally:
            await balance.close()


# ---------------------------------------------------------------- emulator
async def test_the_emulator_weighs_what_was_delivered_and_shows_its_faults(tmp_path: Path) -> None:
    delivered = {"ml": 0.0}
    spec = BalanceSpec(noise_g=0.0)
    clock = ScaledClock()
    async with BalanceEmulator(tmp_path / "b", lambda t: delivered["ml"], clock, spec) as emu:
        balance = await Balance.open(emu.path, command_timeout_s=0.5)
        try:
            await balance.zero()
            assert (await balance.weigh_now()).grams == pytest.approx(0.0, abs=1e-9)
            delivered["ml"] = 0.25
            weight = await balance.weigh_stable()
            assert weight.stable and weight.grams == pytest.approx(
                0.25 * spec.density_g_ml, abs=1e-5
            )
            emu.draft = True
            assert not (await balance.weigh_now()).stable
            with pytest.raises(NotPossibleNow):
                await balance.weigh_stable(timeout_s=5)  # the emulator gives up after 3 s
            emu.draft, emu.overload = False, True
            with pytest.raises(OutOfRange):
                await balance.weigh_now()
            emu.overload = False
            await balance.transport.write(b"XYZ\r\n")
            assert await balance.transport.read_until(b"\r\n", 1) == b"ES\r\n"
            emu.go_silent()
            with pytest.raises(BalanceTimeout):
                await balance.weigh_now()
        finally:
            await balance.close()
    assert emu.commands_received[:3] == ["I2", "I4", "Z"]


async def test_a_port_that_is_not_a_balance_is_refused_with_its_name(tmp_path: Path) -> None:
    with ScriptedPeer(tmp_path / "other", [(b"I2\r\n", b"?\r\n")]) as peer:
        with pytest.raises(BalanceError, match="not an answer to I2"):
            await Balance.open(peer.path)
        peer.check()
