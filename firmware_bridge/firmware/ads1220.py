"""ADS1220 24-bit ADC over SPI (MicroPython, RP2040): the bridge board's converter.

Configured for a ratiometric Wheatstone-bridge transducer: AIN0/AIN1 differential,
PGA gain 128, 1000 SPS continuous conversion, external reference REFP0/REFN0 taken
from the same excitation that feeds the bridge (so excitation drift cancels).
See docs/bridge.md for the wiring.
"""

CMD_RESET = 0x06
CMD_START = 0x08
CMD_RDATA = 0x10
CMD_WREG = 0x40

REG0_AIN0_AIN1_GAIN128 = 0x0E  # MUX 0000, GAIN 111, PGA enabled
REG1_1000SPS_CONTINUOUS = 0xC4  # DR 110, normal mode, continuous conversion, BCS off
REG2_EXT_REF0 = 0x40  # VREF REFP0/REFN0, no 50/60 Hz filter (1000 SPS), IDAC off
REG3_DEFAULT = 0x00

FULL_SCALE = (1 << 23) - 1


class ADS1220:
    def __init__(self, spi, cs, drdy) -> None:  # type: ignore[no-untyped-def]
        self._spi = spi
        self._cs = cs
        self._drdy = drdy
        self._buf = bytearray(3)

    def _command(self, data: bytes) -> None:
        self._cs.value(0)
        self._spi.write(data)
        self._cs.value(1)

    def configure(self) -> None:
        """Reset, load the four configuration registers and start converting."""
        self._command(bytes([CMD_RESET]))
        regs = bytes([REG0_AIN0_AIN1_GAIN128, REG1_1000SPS_CONTINUOUS, REG2_EXT_REF0, REG3_DEFAULT])
        self._command(bytes([CMD_WREG | 0x03]) + regs)
        self._command(bytes([CMD_START]))

    def ready(self) -> bool:
        """DRDY is active low: a conversion is waiting."""
        return bool(self._drdy.value() == 0)

    def read_raw(self) -> int:
        """The latest conversion, sign-extended from 24 bits."""
        self._cs.value(0)
        self._spi.readinto(self._buf, 0x00)
        self._cs.value(1)
        b = self._buf
        value = (b[0] << 16) | (b[1] << 8) | b[2]
        if value & 0x800000:
            value -= 1 << 24
        return value

    def sensor_open(self, raw: int) -> bool:
        """An open bridge lets the inputs float to a rail: the reading pins at full scale."""
        return raw >= FULL_SCALE or raw <= -FULL_SCALE
