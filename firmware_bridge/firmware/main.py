"""Hardware layer of the bridge firmware for an RP2040 board (MicroPython).

Copy ``firmware_bridge/__init__.py``, ``firmware_bridge/ptb1.py`` and
``firmware_bridge/firmware/`` to the board (``mpremote cp -r``) and this file as
``main.py``. Everything the bridge decides lives in ``core.py``; this file only
moves bytes and time between the core and the pins:

- UART0 (GP0 TX, GP1 RX) at 460800 baud to the host,
- SPI0 (GP18 SCK, GP19 MOSI, GP16 MISO, GP17 CS, GP20 DRDY) to the ADS1220,
- GP15 drives the interlock transistor (high = pump stopped),
- GP26 (ADC0) reads the bridge excitation through a 2:1 divider,
- the RP2040's own watchdog resets the board if this loop ever hangs.
"""

import time

import machine  # type: ignore[import-not-found]

from firmware_bridge.firmware.ads1220 import ADS1220
from firmware_bridge.firmware.core import BridgeCore, reached

DEVICE_ID = int.from_bytes(machine.unique_id()[-4:], "little")
NOMINAL_GAIN = 5368.7  # 5 uV/V/mmHg x PGA 128 x 2**23 counts
EXCITATION_DIVIDER = 2.0

interlock_pin = machine.Pin(15, machine.Pin.OUT, value=0)
excitation_adc = machine.ADC(26)
uart = machine.UART(0, 460800, tx=machine.Pin(0), rx=machine.Pin(1), txbuf=4096, rxbuf=1024)
spi = machine.SPI(
    0,
    4_000_000,
    polarity=0,
    phase=1,
    sck=machine.Pin(18),
    mosi=machine.Pin(19),
    miso=machine.Pin(16),
)
adc = ADS1220(spi, machine.Pin(17, machine.Pin.OUT, value=1), machine.Pin(20, machine.Pin.IN))


def set_interlock(asserted: bool) -> None:
    interlock_pin.value(1 if asserted else 0)


def excitation_mv() -> int:
    return int(excitation_adc.read_u16() * 3300 * EXCITATION_DIVIDER / 65535)


def run() -> None:
    core = BridgeCore(DEVICE_ID, 0, NOMINAL_GAIN, on_interlock=set_interlock)
    dog = machine.WDT(timeout=100)
    adc.configure()
    core.boot(time.ticks_us())  # type: ignore[attr-defined]
    try:
        serve(core, dog)
    except Exception:  # any bug: outputs safe first, then a clean restart
        fail_safe()


def serve(core: BridgeCore, dog: object) -> None:
    while True:
        dog.feed()  # type: ignore[attr-defined]
        now = time.ticks_us()  # type: ignore[attr-defined]
        if uart.any():
            core.receive(uart.read(), now)
        if adc.ready():
            raw = adc.read_raw()
            # The ADC converts at 1000 SPS; slower streams take the conversion that is due.
            if reached(now, core.next_sample_us):
                core.sample(raw, now, adc.sensor_open(raw), excitation_mv())
        core.tick(now)
        out = core.take_output()
        if out:
            uart.write(out)


def fail_safe() -> None:
    """Klipper's shutdown: drive the output safe (interlock asserted: the pump stops), then
    stop feeding the watchdog so the RP2040 resets within 100 ms. The board boots with
    BOOTED set, which the host reads as a reboot (``link_lost``): nothing is silent."""
    set_interlock(True)
    while True:
        time.sleep_ms(10)  # type: ignore[attr-defined]


run()
