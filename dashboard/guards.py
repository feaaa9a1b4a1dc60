"""What stands between the network and the event loop that runs the control path.

The control path shares its event loop with the web server, so nothing a client sends may
hold that loop: a control request without a valid token is refused from its headers,
before a byte of its body is read; no body may exceed ``MAX_BODY_BYTES`` (413, whether it
says so in Content-Length or streams); the telemetry WebSocket takes at most
``MAX_TELEMETRY_CLIENTS``. A pure ASGI middleware, so the refusal costs the loop nothing
beyond the headers. ``TrustedHostMiddleware`` (Host allowlist, against DNS rebinding) sits
outside it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

MAX_BODY_BYTES = 256 * 1024  # the largest body the API takes (a case plan) is a few kB
MAX_TELEMETRY_CLIENTS = 16
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """``authorized(scope)`` says whether a write request may go on to be read (a known
    person's token; which role may do what is the endpoint's to check)."""

    def __init__(
        self,
        app: App,
        authorized: Callable[[Scope], Awaitable[bool]],
        public_writes: frozenset[str] = frozenset(),
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.authorized = authorized
        self.public_writes = public_writes
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if (
            method in WRITE_METHODS
            and path.startswith(API_PREFIX)
            and path not in self.public_writes
            and not await self.authorized(scope)
        ):
            await _refuse(send, 401, "control needs Authorization: Bearer <token>")
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _refuse(send, 413, f"request body over {self.max_body_bytes} bytes")
            return
        await self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A streamed body counted as it comes; past the limit the app is told the client
        left (it stops reading), whatever it answers is dropped, and the answer is 413.
        (Raising from ``receive`` does not work: FastAPI turns any error while it reads a
        body into its own 400.)"""
        received = 0
        too_large = started = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if too_large:
                return  # the app's answer to a body it never had whole
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large and not started:
            await _refuse(send, 413, f"request body over {self.max_body_bytes} bytes")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
