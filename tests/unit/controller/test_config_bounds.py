"""Issue 18, item 11: settings and calibration files that would switch a check off in all
but name are refused when loaded, naming the file, the field and the range."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from controller.calibration.transducer import CalibrationRecord
from controller.safety.supervisor import SUPERVISOR_BOUNDS, SupervisorConfig
from controller.system import ConfigError, load_config


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("volume_tolerance_fraction", 50),  # the volume check off
        ("volume_tolerance_ml", 5.0),
        ("stuck_s", 60.0),  # a frozen transducer never noticed
        ("pressure_limit_mmhg", 5000.0),
        ("max_noise_sd_mmhg", 0.0),
        ("max_step_mmhg", "nan"),
    ],
)
def test_a_supervisor_setting_out_of_its_range_is_refused_naming_it(
    tmp_path: Path, setting: str, value: object
) -> None:
    text = f"{value}" if not isinstance(value, str) else value
    config = tmp_path / "injectctl.toml"
    config.write_text(f"[supervisor]\n{setting} = {text}\n")
    low, high = SUPERVISOR_BOUNDS[setting]
    with pytest.raises(ConfigError, match=rf"injectctl.toml: .*{setting} = .* {low:g}\.\.{high:g}"):
        load_config(config)


def test_the_defaults_and_the_edges_of_each_range_are_accepted(tmp_path: Path) -> None:
    SupervisorConfig()
    for setting, (low, high) in SUPERVISOR_BOUNDS.items():
        SupervisorConfig(**{setting: low})
        SupervisorConfig(**{setting: high})
    config = tmp_path / "injectctl.toml"
    config.write_text("[supervisor]\nvolume_tolerance_fraction = 0.05\n")
    assert load_config(config).supervisor.volume_tolerance_fraction == 0.05


@pytest.mark.parametrize("gain", [0.0, -5369.0, "NaN", "Infinity"])
def test_a_calibration_file_with_an_unusable_gain_is_refused(gain: object) -> None:
    record = {
        "device_id": 1,
        "method": "span",
        "created_utc": datetime.now(UTC).isoformat(),
        "zero_counts": 120.0,
        "gain_counts_per_mmhg": gain,
    }
    with pytest.raises(ValidationError, match="gain_counts_per_mmhg"):
        CalibrationRecord.model_validate_json(json.dumps(record))
