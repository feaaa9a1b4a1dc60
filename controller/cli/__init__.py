"""The ``injectctl`` command line: one console script, one module per sub-command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from controller.cli import (
    gravimetric_cmd,
    inject_cmd,
    ports_cmd,
    pump_cmd,
    records_cmd,
    report_cmd,
    serve_cmd,
    sim_cmd,
    transducer_cmd,
    users_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="injectctl",
        description="Controller for image-guided intratumoral injection. "
        "Research use only; not a cleared medical device.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True)
    sim_cmd.add_parser(sub)
    ports_cmd.add_parser(sub)
    pump_cmd.add_parser(sub)
    transducer_cmd.add_parser(sub)
    gravimetric_cmd.add_parser(sub)
    inject_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
    users_cmd.add_parser(sub)
    records_cmd.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(asyncio.run(args.run(args)))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
