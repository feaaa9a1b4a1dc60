"""PTB/1 framing: COBS, CRC-16/CCITT-FALSE and the receiver's resync rules.

Written in the subset of Python that MicroPython also runs (no dataclasses, no
typing at run time beyond annotations), because the board's firmware uses this
same module: one codec, shared by both ends of the wire.

    packet = type:u8 seq:u8 payload crc:u16(LE)     frame = COBS(packet) 0x00
"""

MAX_PACKET = 64
MIN_PACKET = 4
MAX_ENCODED = MAX_PACKET + 2  # COBS adds one byte per 254; a little slack beyond that


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16_table(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE, table-driven: what the board runs (MicroPython has no crc_hqx)."""
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


try:  # CPython: the same CRC in C (the spec names it); the tests check both agree
    from binascii import crc_hqx
except ImportError:  # MicroPython
    crc_hqx = None  # type: ignore[assignment]


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0."""
    if crc_hqx is not None:
        return crc_hqx(data, crc)
    return crc16_table(data, crc)


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing (Cheshire & Baker 1999), without the delimiter."""
    out = bytearray([0])
    code_index = 0
    code = 1
    for byte in data:
        if byte == 0:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_index] = code
            code_index = len(out)
            out.append(0)
            code = 1
    out[code_index] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Decode one COBS block (no delimiter); None if it is not valid COBS."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            return None
        block = data[i + 1 : end]
        if 0 in block:
            return None
        out += block
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(ptype: int, seq: int, payload: bytes = b"") -> bytes:
    """A whole frame, delimiter included."""
    packet = bytes((ptype & 0xFF, seq & 0xFF)) + payload
    if len(packet) + 2 > MAX_PACKET:
        raise ValueError("PTB/1 packet over 64 bytes")
    crc = crc16_ccitt_false(packet)
    return cobs_encode(packet + bytes((crc & 0xFF, crc >> 8))) + b"\x00"


class FrameReceiver:
    """Collects bytes up to 0x00 and yields checked packets; never raises on bad input.

    ``feed`` returns a list of ``(type, seq, payload)``. Bad frames (COBS error,
    shorter than 4 or longer than 64 bytes, CRC mismatch) are counted in
    ``rx_errors`` and dropped; an empty frame is ignored without counting.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._overflow = False
        self.rx_errors = 0
        self.packets = 0

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        out: list[tuple[int, int, bytes]] = []
        start = 0
        end = data.find(b"\x00")
        while end >= 0:
            self._collect(data[start:end])
            packet = self._take()
            if packet is not None:
                out.append(packet)
            start = end + 1
            end = data.find(b"\x00", start)
        if start < len(data):
            self._collect(data[start:])
        return out

    def _collect(self, chunk: bytes) -> None:
        """Bytes of a frame in progress; a frame longer than any packet is marked bad."""
        if len(self._buf) + len(chunk) <= MAX_ENCODED + 1:
            self._buf += chunk
        else:
            self._overflow = True

    def _take(self) -> tuple[int, int, bytes] | None:
        frame, overflow = bytes(self._buf), self._overflow
        self._buf = bytearray()
        self._overflow = False
        if not frame and not overflow:
            return None
        packet = None if overflow else cobs_decode(frame)
        if packet is None or not MIN_PACKET <= len(packet) <= MAX_PACKET:
            self.rx_errors += 1
            return None
        body, crc = packet[:-2], packet[-2] | (packet[-1] << 8)
        if crc16_ccitt_false(body) != crc:
            self.rx_errors += 1
            return None
        self.packets += 1
        return body[0], body[1], bytes(body[2:])
