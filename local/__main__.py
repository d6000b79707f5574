"""`python -m local`: run the local cloud for template.yaml until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from local.intrinsics import Unresolvable
from local.servers import GIL_SWITCH_SECONDS, PortInUse
from local.template import TemplateError
from rightsdesk.platform import local_endpoints


def _port(setting: local_endpoints.PortSetting, flag_value: int | None) -> int:
    try:
        return local_endpoints.port(setting, flag_value)
    except local_endpoints.BadPortSetting as error:
        raise SystemExit(f"rightsdesk local: {error}") from None


def _port_help(setting: local_endpoints.PortSetting) -> str:
    return f"{setting.what} port (env {setting.variable}, default {setting.default})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--template", default="template.yaml", help="SAM template (default: template.yaml)")
    for setting in local_endpoints.PORTS:
        parser.add_argument(setting.flag, type=int, help=_port_help(setting))
    parser.add_argument(
        "--no-schedules",
        action="store_true",
        help="no schedule timers (also RIGHTSDESK_LOCAL_SCHEDULES=off); use POST /_dev/run/<id>",
    )
    parser.add_argument("--no-demo", action="store_true", help="do not register the demo controller")
    parser.add_argument(
        "--max-containers",
        type=int,
        default=None,
        metavar="N",
        help="containers (processes) per function unless its ReservedConcurrentExecutions sets it "
        "(env RIGHTSDESK_LOCAL_MAX_CONTAINERS, default 4)",
    )
    parser.add_argument(
        "--background-priority",
        choices=("normal", "idle"),
        default=os.environ.get("RIGHTSDESK_LOCAL_BACKGROUND_PRIORITY") or "normal",
        help="CPU priority of the containers no caller waits on (queue, stream and schedule consumers): "
        "idle lets them use only what the API leaves, as Lambda's separate capacity would; `make run` "
        "and `make load` use it, test stacks do not (env RIGHTSDESK_LOCAL_BACKGROUND_PRIORITY, default normal)",
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",  # given twice (e.g. the loopback limits, then a test's own), both count; the last wins
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as sam deploy takes them (e.g. CorsAllowOrigins=https://shop.example)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines (skipped resources, events)")
    return parser.parse_args(argv)


def parameter_overrides(pairs: list[str]) -> dict[str, str]:
    """`Key=Value` words (also several in one quoted argument, as sam deploy accepts them)."""
    overrides = {}
    for word in (w for pair in pairs for w in pair.split()):
        key, sign, value = word.partition("=")
        if not sign or not key:
            raise SystemExit(f"rightsdesk local: --parameter-overrides takes Key=Value, not {word!r}")
        overrides[key] = value
    return overrides


def _max_containers(flag_value: int | None) -> int:
    from local.stack import DEFAULT_MAX_CONTAINERS

    value = flag_value if flag_value is not None else os.environ.get("RIGHTSDESK_LOCAL_MAX_CONTAINERS")
    if value is None or value == "":
        return DEFAULT_MAX_CONTAINERS
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise SystemExit(f"rightsdesk local: --max-containers takes a whole number of at least 1, not {value!r}")
    return count


def _configure_logging(verbose: bool) -> None:
    # Only our logger: botocore logs every endpoint lookup at INFO if the root logger is opened up.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("local %(levelname)s %(message)s"))
    logger = logging.getLogger("local")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Handlers' JSON logs go to our stdout unchanged; line buffering keeps them timely in a pipe or file.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    _configure_logging(args.verbose)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)  # as in moto's process: local/servers.py says why

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    from local.stack import (
        LocalStack,  # after logging is set up; imports moto and boto3
    )

    stack = LocalStack(
        args.template,
        gateway_port=_port(local_endpoints.GATEWAY, args.port),
        moto_port=_port(local_endpoints.MOTO, args.moto_port),
        receiver_port=_port(local_endpoints.RECEIVER, args.receiver_port),
        schedules=not args.no_schedules and os.environ.get("RIGHTSDESK_LOCAL_SCHEDULES", "on").lower() != "off",
        demo=not args.no_demo,
        parameter_overrides=parameter_overrides(args.parameter_overrides),
        max_containers=_max_containers(args.max_containers),
        background_priority=args.background_priority,
    )
    try:
        stack.start()
    except (PortInUse, TemplateError, Unresolvable) as error:
        print(f"rightsdesk local: {error}", file=sys.stderr)
        return 2
    print(stack.banner(), flush=True)
    while not stop.wait(0.5):
        pass
    print("rightsdesk local: stopping", flush=True)
    stack.stop()
    print("rightsdesk local: stopped", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    # Everything is stopped and joined by now; tearing down the interpreter's moto and botocore
    # object graphs would add over a second to Ctrl-C, so flush and leave.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
