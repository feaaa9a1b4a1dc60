"""The bridge board's MicroPython firmware: a pure core and a hardware layer."""
