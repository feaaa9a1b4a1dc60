"""Who is asking: a bearer token resolved to a person and checked against a role.

The token in ``INJECTCTL_TOKEN`` is the first operator (compared in constant time); every
other token is looked up by its SHA-256 among the record's users (``injectctl users
add``). The people are read from the record again when a request comes more than a
second after the last read, so a person added while ``serve`` runs can sign in at once, one
disabled (``injectctl users disable``) is refused within a second, and a flood of requests
costs one read a second. An endpoint states the roles it needs: 401 without a known token, 403 for
a role that may not; the request then acts for that person in the record.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, HTTPException

from controller.records import queries
from controller.records.actors import act_as
from controller.records.people import FIRST_OPERATOR, Person, Role, token_digest

RELOAD_AFTER_S = 1.0
SCHEME = "Bearer "


class Directory:
    def __init__(self, db: Path, first_operator_token: str) -> None:
        self.db = db
        self.first_token = first_operator_token
        self._by_digest: dict[str, Person] = {}
        self._loaded_at = -RELOAD_AFTER_S
        self._reload = asyncio.Lock()

    async def load(self) -> None:
        rows = await asyncio.to_thread(queries.users, self.db)
        self._by_digest = {r["token_sha256"]: Person(r["name"], Role(r["role"])) for r in rows}
        self._loaded_at = time.monotonic()

    def known(self, authorization: str | None) -> Person | None:
        """From what is loaded, no I/O (the guard asks this on the loop)."""
        if not authorization or not authorization.startswith(SCHEME):
            return None
        token = authorization[len(SCHEME) :]
        if self.first_token and secrets.compare_digest(token.encode(), self.first_token.encode()):
            return Person(FIRST_OPERATOR, Role.OPERATOR)
        return self._by_digest.get(token_digest(token))

    async def person(self, authorization: str | None) -> Person | None:
        """``known`` after re-reading the record if the last read is over a second old."""
        if not (authorization or "").startswith(SCHEME):
            return None
        async with self._reload:
            if time.monotonic() - self._loaded_at >= RELOAD_AFTER_S:
                await self.load()
        return self.known(authorization)


def requires(
    directory: Callable[[], Directory], roles: Iterable[Role]
) -> Callable[..., Awaitable[Person]]:
    """A FastAPI dependency: the person asking, if their role is one of ``roles``."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(allowed))

    async def person(authorization: Annotated[str | None, Header()] = None) -> Person:
        found = await directory().person(authorization)
        if found is None:
            raise HTTPException(401, "needs Authorization: Bearer <token> of a known person")
        if found.role not in allowed:
            raise HTTPException(403, f"{found.name} is {found.role}; this needs one of: {names}")
        act_as(found.name)
        return found

    return person


def depends(directory: Callable[[], Directory], roles: Iterable[Role]) -> list[object]:
    return [Depends(requires(directory, roles))]
