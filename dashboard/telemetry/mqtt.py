"""MQTT telemetry: the controller publishes to a broker and never depends on it.

One task owns the connection. It takes pressure batches from the telemetry bus (a
bounded queue: old batches are dropped and counted when the broker is slow or absent),
the state from the runtime (retained, on change and at 2 Hz), and the record's events
and alarms from the recorder once they are committed (kept in order while disconnected
and published after reconnecting). Nothing on the control path touches this module.
Topics and payloads: docs/mqtt.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from pydantic import SecretStr

from controller.alarms import alarm_priority
from controller.config import MqttConfig
from controller.records.recorder import utc_now
from dashboard.telemetry.bus import Client, TelemetryBus
from drivers.clock import now_s
from drivers.tasks import cancel_and_wait

SCHEMA = 1
STATE_PERIOD_S = 0.5
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.25, 10.0
KEEPALIVE_S = 5
PUBLISH_TIMEOUT_S = 5.0


@dataclass
class MqttStats:
    connected: bool = False
    connects: int = 0
    published: int = 0
    samples_published: int = 0
    dropped_batches: int = 0
    dropped_events: int = 0
    remote_stops: int = 0
    remote_stops_refused: int = 0
    last_error: str = ""


class MqttPublisher:
    def __init__(
        self,
        config: MqttConfig,
        *,
        device_id: str,
        bus: TelemetryBus,
        state: Callable[[], dict[str, Any]],
        remote_stop: Callable[[], Awaitable[tuple[str, str | None]]],
        record: Callable[[str, dict[str, Any]], object],
    ) -> None:
        assert config.url is not None
        self.config, self.bus, self._state = config, bus, state
        secret = config.stop_token
        self._stop_token = b"" if secret is None else secret.get_secret_value().encode()
        self._remote_stop, self._record = remote_stop, record
        self.prefix = f"injectctl/{config.device_id or device_id}"
        url = urlsplit(config.url)
        self.host, self.port = (
            url.hostname or "127.0.0.1",
            url.port or (8883 if url.scheme == "mqtts" else 1883),
        )
        self.tls = url.scheme == "mqtts"
        self._stats = MqttStats()
        self._events: deque[tuple[str, dict[str, Any], bool]] = deque()
        self._active_alarms: list[dict[str, Any]] = []
        self._seq: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._samples: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_state: dict[str, Any] | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._samples = self.bus.subscribe()
        self._samples.wake = self._wake  # batches and state changes wake the sender
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self) -> None:
        """Publish ``offline`` (the broker then drops the Will) and disconnect; the task is
        cancelled and awaited whatever the broker does."""
        if self._task is None:
            return
        try:
            await self._say_offline()
        finally:
            await cancel_and_wait(self._task)
            self._task = None
            if self._samples is not None:
                self.bus.unsubscribe(self._samples)

    async def _say_offline(self) -> None:
        client = self._client
        if client is None or not self._stats.connected:
            return
        try:
            async with asyncio.timeout(2.0):
                await self._flush_events(client)
                await client.publish(self._topic("status"), "offline", qos=1, retain=True)
        except Exception as exc:  # a broker going away now must not hold up the shutdown
            self._stats.last_error = f"offline not published: {type(exc).__name__}: {exc}"

    @property
    def stats(self) -> MqttStats:
        """Counters; batches dropped are counted by the bus even while the sender is stuck."""
        if self._samples is not None:
            self._stats.dropped_batches = self._samples.dropped_batches
        return self._stats

    def health(self) -> dict[str, Any]:
        return {
            "broker": f"{self.host}:{self.port}",
            "topic_prefix": self.prefix,
            **self.stats.__dict__,
        }

    # ------------------------------------------------------------ producers (the loop)
    def on_record(self, what: str, record: dict[str, Any]) -> None:
        """Recorder observer: a committed event, alarm or acknowledgement."""
        if what == "alarm":
            record = {**record, "priority": alarm_priority(str(record.get("kind")))}
            self._active_alarms.append(record)
            self._queue_event("alarms", {"active": list(self._active_alarms), "raised": record})
        elif what == "acknowledged":
            self._active_alarms.clear()
            self._queue_event("alarms", {"active": [], "acknowledged": record["t_utc"]})
        self._queue_event("events", {**record, "record": what})

    def _queue_event(self, topic: str, body: dict[str, Any]) -> None:
        if len(self._events) >= self.config.queue_events:
            self._events.popleft()  # only when disconnected for hours: counted, visible
            self._stats.dropped_events += 1
        self._events.append((topic, body, topic == "alarms"))
        self._wake.set()

    # ------------------------------------------------------------ the connection task
    async def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            try:
                async with self._connect() as client:
                    self._client = client
                    await self._online(client)
                    backoff = BACKOFF_MIN_S
                    await self._session(client)
            except (aiomqtt.MqttError, TimeoutError, OSError) as failure:
                self._stats.last_error = str(failure)
            except Exception as failure:  # a bug must not end publishing for good: reconnect
                self._stats.last_error = f"{type(failure).__name__}: {failure}"
            self._stats.connected, self._client = False, None
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))  # reconnect backoff
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _session(self, client: aiomqtt.Client) -> None:
        """Send (and listen for remote stops) until one of them fails.

        Not a TaskGroup: on Python 3.11 a TaskGroup cancels its children once, and a child
        inside aiomqtt's publish can drop that cancel (see ``drivers.tasks``); the owner's
        repeated cancels would then never reach it and the shutdown would hang. Here the
        children are ended with ``cancel_and_wait``, which repeats the cancel.
        """
        children = [asyncio.create_task(self._send(client), name="mqtt-send")]
        if self.config.remote_stop:
            children.append(asyncio.create_task(self._listen(client), name="mqtt-listen"))
        try:
            await asyncio.wait(children, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(*children)  # raises what ended the first of them

    def _connect(self) -> aiomqtt.Client:
        tls = None
        if self.tls:
            tls = ssl.create_default_context(cafile=self.config.tls_ca_file)
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.config.username,
            password=_secret(self.config.password),
            identifier=f"{self.prefix.replace('/', '-')}-{secrets.token_hex(3)}",
            will=aiomqtt.Will(self._topic("status"), "offline", qos=1, retain=True),
            keepalive=KEEPALIVE_S,
            timeout=PUBLISH_TIMEOUT_S,
            tls_context=tls,
        )

    async def _online(self, client: aiomqtt.Client) -> None:
        await client.publish(self._topic("status"), "online", qos=1, retain=True)
        self._stats.connected = True
        self._stats.connects += 1
        self._last_state = None  # a new session: publish the state at once
        if self.config.remote_stop:
            await client.subscribe(self._topic("cmd/stop"), qos=1)

    async def _send(self, client: aiomqtt.Client) -> None:
        next_state_s = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_state_s - now_s())):
                    await self._wake.wait()
            self._wake.clear()
            await self._flush_events(client)
            state = self._state()
            if state != self._last_state or now_s() >= next_state_s:
                await self._publish(client, "state", state, qos=0, retain=True)
                self._last_state = state
                next_state_s = now_s() + STATE_PERIOD_S
            await self._flush_samples(client)

    async def _flush_events(self, client: aiomqtt.Client) -> None:
        """In order; an event leaves the queue only once the broker has it (QoS 1)."""
        while self._events:
            topic, body, retain = self._events[0]
            await self._publish(client, topic, body, qos=1, retain=retain)
            self._events.popleft()

    async def _flush_samples(self, client: aiomqtt.Client) -> None:
        assert self._samples is not None
        for message in self._samples.next_messages():
            batch = json.loads(message)
            if batch.get("type") != "samples":
                continue  # state changes reach MQTT through _send's own comparison
            body = {"t0_mono_s": batch["t0"], "dt_s": batch["dt"], "p_mmhg": batch["p"]}
            await self._publish(client, "pressure", body, qos=0, retain=False)
            self._stats.samples_published += len(batch["p"])

    async def _publish(
        self, client: aiomqtt.Client, topic: str, body: dict[str, Any], qos: int, retain: bool
    ) -> None:
        seq = self._seq.get(topic, 0) + 1
        envelope = {
            "schema": SCHEMA,
            "seq": seq,
            "t_mono_s": round(now_s(), 6),
            "t_utc": utc_now(),
            **body,
        }
        await client.publish(self._topic(topic), json.dumps(envelope), qos=qos, retain=retain)
        self._seq[topic] = seq
        self._stats.published += 1

    async def _listen(self, client: aiomqtt.Client) -> None:
        """Remote stop (opt-in): only a live message carrying the stop token stops.

        A retained message is refused: it would stop every injection at every reconnection
        long after whoever sent it meant it. Every refusal and every stop goes into the
        record (and from there to ``events``); a pump that fails to stop is an outcome, not
        the end of the listener.
        """
        async for message in client.messages:
            why_not = self._why_refused(message)
            if why_not is not None:
                self._stats.remote_stops_refused += 1
                self._record("remote_stop_refused", {"why": why_not})
                continue
            self._stats.remote_stops += 1
            aimed_at: str | None = None
            try:
                outcome, aimed_at = await self._remote_stop()
            except Exception as exc:  # the stop path has its own fallback; say what happened
                outcome = f"stop failed: {type(exc).__name__}: {exc}"
            self._record("remote_stop", {"outcome": outcome, "injection_id": aimed_at})

    def _why_refused(self, message: aiomqtt.Message) -> str | None:
        if message.retain:
            return "retained message (a stop must be sent live)"
        token = _token_of(message.payload).encode()
        if not self._stop_token or not secrets.compare_digest(token, self._stop_token):
            return "missing or wrong stop token"
        return None

    def _topic(self, leaf: str) -> str:
        return f"{self.prefix}/{leaf}"


def _token_of(payload: Any) -> str:
    """``{"token": "..."}`` or the bare token; anything else is an empty token."""
    if not isinstance(payload, bytes | bytearray):
        return ""
    text = payload.decode("utf-8", errors="replace").strip()
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(text).get("token", ""))
    return text


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
