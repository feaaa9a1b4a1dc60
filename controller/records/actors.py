"""Who asked for what the record says happened.

Every event and alarm carries an actor: the person whose request caused it (set for the
request by the API's authentication), or ``controller`` for what the controller did on
its own (a detector's verdict, the pump watch, a fill ending). A context variable carries
it, so no signature between the API and the recorder has to pass it along; the
controller's own background tasks start in a context whose actor is the controller, so a
pump watch begun by an operator's START does not record its later events in her name.
"""

from __future__ import annotations

import contextvars

CONTROLLER = "controller"

_actor: contextvars.ContextVar[str] = contextvars.ContextVar("injectctl_actor", default=CONTROLLER)


def current_actor() -> str:
    return _actor.get()


def act_as(name: str) -> None:
    """The rest of this task (a request) acts for ``name``."""
    _actor.set(name)


def controller_context() -> contextvars.Context:
    """A copy of the current context in which the controller is the actor: for the tasks
    the controller owns."""
    context = contextvars.copy_context()
    context.run(_actor.set, CONTROLLER)
    return context
