"""An MT-SICS analytical balance on a serial port (Mettler Toledo XP/XS/XPR and alike).

The gravimetric pump test weighs what the pump delivered every 30 s for two
hours, so this driver is small and strict: one command at a time, each reply
parsed against the command that asked for it, stale lines from an earlier
timed-out command thrown away before the next one, and every failure a
:class:`BalanceError` or :class:`BalanceTimeout` with the port in the message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from drivers.mtsics import (
    CRLF,
    BalanceError,
    Weight,
    encode_command,
    parse_ack,
    parse_answer,
    parse_weight,
)
from drivers.transport import ReadTimeout, SerialTransport, TransportError, open_serial

log = logging.getLogger(__name__)

# ``S`` waits for a stable weight; the balance gives up by itself (``S I``) after its own
# stability timeout, which is a few seconds on most models.
STABLE_TIMEOUT_S = 10.0


# replies still on their way when a reset goes out: a few at most; a balance that keeps
# sending (continuous output switched on) would otherwise hold the reset for ever
MAX_LINES_BEFORE_RESET_ANSWER = 16


class BalanceTimeout(BalanceError, TimeoutError):
    """The balance did not answer in time."""


@dataclass(frozen=True, slots=True)
class BalanceIdentity:
    model: str
    serial_number: str


class Balance:
    """One balance on one port. Use :meth:`open`, then ``close()``."""

    def __init__(self, transport: SerialTransport, *, command_timeout_s: float = 1.0) -> None:
        self.transport = transport
        self.command_timeout_s = command_timeout_s
        self.identity: BalanceIdentity | None = None
        self._lock = asyncio.Lock()
        self._resync = False  # a reply may still be on its way: reset before the next command

    @classmethod
    async def open(cls, url: str, baud: int = 9600, **kwargs: float) -> Balance:
        """Open the port and identify the balance (``I2``, ``I4``)."""
        transport = await open_serial(url, baud)
        balance = cls(transport, **kwargs)
        try:
            await balance.identify()
        except BalanceError as exc:
            await transport.close()
            raise type(exc)(
                f"{url} is not an MT-SICS balance, or not set to 8N1 at {baud}: {exc}"
            ) from exc
        except BaseException:
            await transport.close()
            raise
        return balance

    async def close(self) -> None:
        await self.transport.close()

    async def identify(self) -> BalanceIdentity:
        model = parse_answer(await self._exchange("I2", self.command_timeout_s), "I2")
        serial = parse_answer(await self._exchange("I4", self.command_timeout_s), "I4")
        self.identity = BalanceIdentity(model.strip(), serial.strip())
        return self.identity

    async def weigh_now(self) -> Weight:
        """``SI``: the weight at once, stable or not (the test samples on a fixed clock)."""
        return parse_weight(await self._exchange("SI", self.command_timeout_s))

    async def weigh_stable(self, timeout_s: float = STABLE_TIMEOUT_S) -> Weight:
        """``S``: the next stable weight; ``NotPossibleNow`` if the balance never settled."""
        return parse_weight(await self._exchange("S", timeout_s))

    async def zero(self, timeout_s: float = STABLE_TIMEOUT_S) -> None:
        """``Z``: zero on a stable load (the empty beaker with its oil layer)."""
        parse_ack(await self._exchange("Z", timeout_s), "Z")

    async def _exchange(self, command: str, timeout_s: float) -> str:
        async with self._lock:
            try:
                if self._resync:
                    await self._reset()
                self._drop_stale()
                await self.transport.write(encode_command(command))
                line = await self.transport.read_until(CRLF, timeout_s)
            except ReadTimeout as exc:
                self._resync = True
                raise BalanceTimeout(
                    f"balance {self.transport.url}: no answer to {command} in {timeout_s:g} s"
                ) from exc
            except TransportError as exc:
                raise BalanceError(f"balance {self.transport.url}: {exc}") from exc
        return line.decode("ascii", errors="replace")

    async def _reset(self) -> None:
        """``@`` after a timeout. MT-SICS replies carry no sequence number, so a late answer
        could pass for the next one; the balance answers in order, so everything before the
        ``I4 A`` that ``@`` returns is stale and dropped. ``@`` keeps the zero."""
        self._drop_stale()
        await self.transport.write(encode_command("@"))
        for _ in range(MAX_LINES_BEFORE_RESET_ANSWER):
            line = await self.transport.read_until(CRLF, self.command_timeout_s)
            if line.startswith(b"I4 A"):
                self._resync = False
                return
            log.info("balance %s: dropped late reply %r", self.transport.url, line)
        raise BalanceError(
            f"balance {self.transport.url}: {MAX_LINES_BEFORE_RESET_ANSWER} lines and no "
            "answer to the reset (@): check the balance's interface settings (MT-SICS, "
            "no continuous output)"
        )

    def _drop_stale(self) -> None:
        stale = self.transport.discard_input()
        if stale:
            log.info("balance %s: dropped stale input %r", self.transport.url, stale)
