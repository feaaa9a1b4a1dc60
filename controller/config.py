"""The controller's settings, validated by pydantic (loaded from TOML by ``serve``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from controller.procedure.limits import LimitsConfig
from controller.safety.pressure_limit import PressureLimitConfig
from controller.safety.supervisor import SupervisorConfig


class MqttConfig(BaseModel):
    """The MQTT publisher (``[mqtt]`` in the serve config; ``--mqtt URL`` sets ``url``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(default=None, pattern=r"^mqtts?://[^/:]+(:\d{1,5})?/?$")
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="never logged nor recorded")
    tls_ca_file: str | None = Field(default=None, description="CA bundle for mqtts://")
    device_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="topic segment; default the transducer bridge's device id",
    )
    remote_stop: bool = Field(default=False, description="accept cmd/stop with stop_token")
    stop_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="the token cmd/stop must carry; never the HTTP control token",
    )
    queue_batches: int = Field(default=50, ge=1, le=10_000, description="pressure batches held")
    queue_events: int = Field(default=10_000, ge=100, le=1_000_000)

    @model_validator(mode="after")
    def _stop_needs_its_own_token(self) -> MqttConfig:
        """A remote stop token travels to the broker and every subscriber of ``cmd/stop``
        may see it: it must be a token that can do nothing but stop."""
        if self.remote_stop and self.stop_token is None:
            raise ValueError("remote_stop = true needs stop_token (16 characters or more)")
        return self


class ImagingConfig(BaseModel):
    """The hospital's imaging archive (``[imaging]``): DICOMweb (QIDO-RS, WADO-RS, STOW-RS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dicomweb_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="the archive's DICOMweb root, e.g. http://pacs:8042/dicom-web",
    )
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="never logged nor recorded")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class ControllerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: LimitsConfig = LimitsConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    safe_timeout_s: int = Field(default=2, ge=1, le=10, description="NE-1000 safe-mode watchdog")
    bridge_watchdog_ms: int = Field(default=250, ge=20, le=250, description="bridge WATCHDOG")
    trip_consecutive: int = Field(default=5, ge=1, le=50, description="bridge TRIP_LIMIT samples")
    pump_poll_s: float = Field(default=0.1, gt=0.01, le=1.0)
    zero_max_age_s: float = Field(default=3600.0, gt=0)
    # The pressure watch ends a relief at rest + 2 mmHg and twice the estimate bounds a wrong
    # one; this only caps both. At 500 uL a 5 mL syringe blocked at 5 mL/min (633 uL stored
    # at 358 mmHg) kept 128 uL after relief in the population bench.
    relief_max_ul: float = Field(
        default=1000.0,
        ge=0,
        le=1000,
        description="most a relief withdraws (the pressure ends it sooner)",
    )
    relief_rate_ml_min: float = Field(default=5.0, gt=0, le=10, description="withdrawal rate")
    mqtt: MqttConfig = MqttConfig()
    imaging: ImagingConfig = ImagingConfig()
    pressure_limit: PressureLimitConfig = PressureLimitConfig()
