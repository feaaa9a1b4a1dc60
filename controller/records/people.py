"""People: who may do what, and how a token is kept.

Four roles: an **operator** plans cases and injects, an **engineer** calibrates the
transducer and tests the pump, a **viewer** reads, and an **automation** token is for
scripts and hardware-in-the-loop rigs (it may do what an operator and an engineer may).
A token is 32 random bytes shown once when the person is added; the record keeps only its
SHA-256 (a random 256-bit secret needs no slow hash; a password would). The token in
``INJECTCTL_TOKEN`` is the first operator, named ``operator``.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass

FIRST_OPERATOR = "operator"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Role(enum.StrEnum):
    OPERATOR = "operator"
    ENGINEER = "engineer"
    VIEWER = "viewer"
    AUTOMATION = "automation"


# what each kind of request needs (dashboard.auth enforces it on every endpoint)
INJECTS = frozenset({Role.OPERATOR, Role.AUTOMATION})
CALIBRATES = frozenset({Role.ENGINEER, Role.AUTOMATION})
READS_CASES = frozenset(Role)


@dataclass(frozen=True)
class Person:
    name: str
    role: Role


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def checked_name(name: str) -> str:
    """A person's name as the record keeps it; ``ValueError`` says what is allowed."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    if name == "controller":
        raise ValueError("name 'controller' is the controller's own in the record")
    return name
