"""What the controller reads from the pump: the last digit of a DIS reading."""

from __future__ import annotations

import pytest

from controller.device_ops import dis_resolution_ml
from drivers.ne1000_protocol import format_reply_number


@pytest.mark.parametrize("volume_ml", [0.0, 0.2484, 0.999, 1.0, 1.8734, 9.999, 10.0, 47.5, 150.0])
def test_a_reading_of_any_volume_is_within_one_last_digit_of_it(volume_ml: float) -> None:
    """DIS replies carry 4 digits, at most 3 after the point, in mL or uL: whichever the
    pump uses, the reading differs from the volume by less than one last digit."""
    digit_ml = dis_resolution_ml(volume_ml)
    in_ml = float(format_reply_number(volume_ml))
    in_ul = float(format_reply_number(volume_ml * 1e3)) / 1e3 if volume_ml < 10 else in_ml
    assert abs(in_ml - volume_ml) <= digit_ml / 2 + 1e-12
    assert abs(in_ul - volume_ml) <= digit_ml / 2 + 1e-12


def test_a_resumed_fill_over_a_millilitre_ends_on_its_target() -> None:
    """Population normal #120: paused at 0.2484 mL, resumed with 1.625 mL left; the pump
    stopped at its target and read 1873 uL, 0.4 uL under 0.2484 + 1.625, which a 0.1 uL
    tolerance took for a pump that stopped by itself (a link_lost alarm on a normal run)."""
    assert 0.2484 + 1.625 - dis_resolution_ml(0.2484 + 1.625) <= 1.873
