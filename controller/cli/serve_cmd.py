"""``injectctl serve``: the controller, its devices (or the simulator) and the dashboard.

One process, one event loop: uvicorn serves the FastAPI app, whose lifespan starts and
stops the devices and the controller. Prints the dashboard URL once it is listening
(and the operator token if it generated one); exits non-zero with one line if a device
cannot be opened. SIGINT/SIGTERM stop any running infusion before exiting, and say so in
one line.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from controller.cli.simulation import BuiltInSimulator
from controller.config import ControllerConfig, MqttConfig
from controller.procedure.catalog import CatalogError
from controller.system import ConfigError, DeviceSettings, load_config
from dashboard.app import create_app
from dashboard.runtime import ServeSettings
from dashboard.server import Server


class _Server(Server):
    """Says where it listens once it really does."""

    url = ""
    token_note = ""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"injectctl dashboard at {self.url}{self.token_note}", flush=True)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the controller and the dashboard")
    p.add_argument("--sim", action="store_true", help="the built-in simulator (the default)")
    p.add_argument("--pump-port")
    p.add_argument("--transducer-port")
    p.add_argument("--pump-baud", type=int, default=19200)
    p.add_argument("--pump-address", type=int, default=0)
    p.add_argument("--transducer-baud", type=int, default=460800)
    p.add_argument("--config", type=Path, help="controller settings (TOML)")
    p.add_argument("--db", type=Path, default=Path("injectctl.sqlite"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the dashboard is reached by (the Host header); repeatable",
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--mqtt", help="publish telemetry to mqtt://HOST:PORT (or mqtts://)")
    p.add_argument("--scenario", default="normal-liver-saline-1ml", help="simulator scenario")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    real = args.pump_port is not None or args.transducer_port is not None
    if real and (args.pump_port is None or args.transducer_port is None):
        print("injectctl serve: give both --pump-port and --transducer-port", file=sys.stderr)
        return 2
    try:
        controller_config = _config(args)
    except ConfigError as exc:
        print(f"injectctl serve: {exc}", file=sys.stderr)
        return 2
    token = os.environ.get("INJECTCTL_TOKEN") or ""
    generated = not token
    token = token or secrets.token_urlsafe(24)
    try:
        simulation = None if real else BuiltInSimulator(args.scenario)
    except CatalogError as exc:
        print(f"injectctl serve: --scenario: {exc}", file=sys.stderr)
        return 2
    devices = None
    if real:
        devices = DeviceSettings(
            args.pump_port,
            args.transducer_port,
            pump_baud=args.pump_baud,
            pump_address=args.pump_address,
            transducer_baud=args.transducer_baud,
        )
    hosts = (*ServeSettings.allowed_hosts, args.host, *args.allow_host)
    settings = ServeSettings(
        db=args.db,
        token=token,
        devices=devices,
        simulation=simulation,
        config=controller_config,
        allowed_hosts=tuple(dict.fromkeys(hosts)),
    )
    return await _serve(settings, args, f" (operator token: {token})" if generated else "")


def _config(args: argparse.Namespace) -> ControllerConfig:
    """The configuration file, with ``--mqtt`` over its ``[mqtt] url``."""
    config = load_config(args.config)
    if args.mqtt is None:
        return config
    try:
        mqtt = MqttConfig.model_validate({**config.mqtt.model_dump(), "url": args.mqtt})
    except ValidationError as exc:
        raise ConfigError(f"--mqtt: {exc.errors()[0]['msg']}") from None
    return config.model_copy(update={"mqtt": mqtt})


async def _serve(settings: ServeSettings, args: argparse.Namespace, token_note: str) -> int:
    try:
        app = create_app(settings)
    except ValueError as exc:  # settings that contradict each other: say which, exit 2
        print(f"injectctl serve: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="critical", lifespan="on"
    )
    server = _Server(config)
    server.url = f"http://{args.host}:{args.port}/"
    server.token_note = token_note
    try:
        await server.serve()
    except Exception as exc:  # a device that does not open or answer: one line, non-zero
        print(f"injectctl serve: {_one_line(exc)}", file=sys.stderr)
        return 1
    if not server.started:
        print("injectctl serve: could not start (a device did not open or answer)", file=sys.stderr)
        return 1
    failed = server.lifespan.shutdown_failed or server.lifespan.error_occurred
    print(f"injectctl serve: {_stopped(server, failed)}", file=sys.stderr)
    return 1 if failed else 0


def _stopped(server: _Server, failed: bool) -> str:
    """The one line an exit after serving leaves: what asked for it and how it ended."""
    why = f"on {server.stop_signal.name}" if server.stop_signal is not None else "(server exit)"
    if failed:
        return f"stopped {why}, but its shutdown failed: check that the pump has stopped"
    return f"stopped {why}; any infusion was stopped first and the record closed"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
