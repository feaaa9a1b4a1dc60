"""The transducer staleness limit the controller tests run at, and why it is not 20 ms.

The product's rule is 20 ms (``DeviceSettings.staleness_s``). ``make test`` runs the
real-time tests two at a time to keep within the brief's budget, and on two busy cores the
kernel does not always hand an emulated bridge's bytes over in time: a pty's writes reach
the reader through a kernel worker thread, and with both cores busy the host saw 22-26 ms
gaps while the emulator wrote every frame on time and the host's timer ran on time with
nothing pending; the worker's wait is inferred from those two logs, not seen in the kernel
(2026-12-07: a rig in its own real-time process, two CPU-bound processes beside it, one
`link_lost` in 60 s; `pytest -m realtime -n 2` at 20 ms: six tests failed with a latched
`link_lost` while idle, "no sample for 22.5-23.0 ms"). A real bridge's USB
serial bytes take the same path; on hardware that is a host too busy to be trusted, and
the alarm is right. A test whose subject is something else (the record, a race between
commands, a plan) therefore runs at ``SHARED_STALENESS_S``, as the API and MQTT tests
already did; the tests whose subject is the rule itself run at ``PRODUCT_STALENESS_S``,
are marked ``exclusive`` and run alone (``tests/conftest.py``).

The shared limit was 100 ms until three runs of ``make test`` on fresh clones (two in
session 32, one in CI) each failed one test in the second pass with a latched
``link_lost`` at rest in its fixture ("no sample from the bridge for 103.3 / 103.5 /
144.6 ms"), beside a browser test on the other worker; each passed alone. The rig's
emulators run in the test's own process and loop, so a process kept off both cores that
long writes no frames either, and after its looks (``drivers.staleness``) the timer cannot
tell that from a quiet bridge. 250 ms is the shared limit since.
"""

from __future__ import annotations

from controller.system import DeviceSettings

PRODUCT_STALENESS_S = DeviceSettings.staleness_s
SHARED_STALENESS_S = 0.25
# a bridge silence every test at the shared limit sees as link_lost
LINK_LOST_SILENCE_S = 3 * SHARED_STALENESS_S
