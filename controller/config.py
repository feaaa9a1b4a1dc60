"""The controller's settings, validated by pydantic (loaded from TOML by ``serve``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from controller.limits import LimitsConfig
from controller.supervisor import SupervisorConfig


class ControllerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    limits: LimitsConfig = LimitsConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    safe_timeout_s: int = Field(default=2, ge=1, le=10, description="NE-1000 safe-mode watchdog")
    bridge_watchdog_ms: int = Field(default=250, ge=20, le=250, description="bridge WATCHDOG")
    trip_consecutive: int = Field(default=5, ge=1, le=50, description="bridge TRIP_LIMIT samples")
    pump_poll_s: float = Field(default=0.1, gt=0.01, le=1.0)
    zero_max_age_s: float = Field(default=3600.0, gt=0)
    relief_max_ul: float = Field(default=50.0, ge=0, le=100)
    relief_rate_ml_min: float = Field(default=1.0, gt=0, le=5)
