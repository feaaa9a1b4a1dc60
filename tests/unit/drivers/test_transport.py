"""The serial transport against a real pty peer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.transport import LinkClosed, PortOpenError, ReadTimeout, open_serial
from simulator.pty_link import PtyLink


async def test_open_error_is_one_line_naming_the_port(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(PortOpenError) as info:
        await open_serial(str(missing))
    text = str(info.value)
    assert str(missing) in text and "\n" not in text


async def test_reads_with_timeouts(tmp_path: Path) -> None:
    received: list[bytes] = []
    peer = PtyLink(tmp_path / "dev", lambda data, t: received.append(data))
    peer.plug()
    link = await open_serial(str(tmp_path / "dev"), 460800, parity="N", stop_bits=1)
    try:
        await link.write(b"hello")
        peer.write(b"abcdef\r\n")
        assert await link.read_exactly(3, 1.0) == b"abc"
        assert await link.read_until(b"\r\n", 1.0) == b"def\r\n"
        peer.write(b"junk\x02frame\x03rest")
        assert await link.read_frame(0x02, 0x03, 1.0) == b"\x02frame\x03"
        with pytest.raises(ReadTimeout) as info:
            await link.read_until(b"\n", 0.05)
        assert info.value.partial == b"rest"
        assert link.discard_input() == b"rest"
    finally:
        await link.close()
        peer.unplug()
    assert b"".join(received) == b"hello"
    assert not link.is_open
    with pytest.raises(LinkClosed):
        link.write_nowait(b"x")


async def test_unplugged_peer_closes_the_link(tmp_path: Path) -> None:
    lost: list[str] = []
    peer = PtyLink(tmp_path / "dev", lambda data, t: None)
    peer.plug()
    link = await open_serial(str(tmp_path / "dev"), on_lost=lost.append)
    try:
        peer.unplug()
        with pytest.raises(LinkClosed):
            await link.read_any(2.0)
        assert lost
    finally:
        await link.close()


async def test_pyserial_socket_url() -> None:
    """A pyserial URL (a serial-over-TCP adapter) works like a device path."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        link = await open_serial(f"socket://127.0.0.1:{port}", 9600)
        try:
            await link.write(b"ping\n")
            assert await link.read_until(b"\n", 2.0) == b"ping\n"
        finally:
            await link.close()
    finally:
        server.close()
        await server.wait_closed()
