"""``pgfortress lab ...`` commands: up, status, down, list.

:func:`add_lab_commands` adds the ``lab`` command to an existing argparse
sub-parser collection. Every leaf command stores its handler as ``handler``;
a handler takes the parsed arguments, returns the exit code, and raises
:class:`~pgfortress.errors.LabError` when it cannot do its job.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pgfortress.errors import LabError

from . import health, lifecycle, state
from .names import DEFAULT_HOSTS
from .platforms import DEFAULT_PLATFORM, PLATFORMS

__all__ = ["add_lab_commands", "main", "parse_images"]


def add_lab_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``lab`` and its sub-commands."""
    lab = subparsers.add_parser(
        "lab",
        help="disposable Debian 12 or 13 hosts for trying and testing pgfortress",
    )
    commands = lab.add_subparsers(dest="lab_command", required=True)

    up = commands.add_parser("up", help="bring a lab up (or check it is up)")
    _name_option(up)
    up.add_argument(
        "--hosts",
        default=",".join(DEFAULT_HOSTS),
        help="comma-separated host names (default: %(default)s)",
    )
    up.add_argument(
        "--platform",
        default=DEFAULT_PLATFORM,
        choices=sorted(PLATFORMS),
        help="the Debian release every host runs (default: %(default)s)",
    )
    up.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="HOST=TARBALL",
        help="boot HOST from this root filesystem tarball instead of a fresh one "
        "(repeatable)",
    )
    up.set_defaults(handler=_up)

    status = commands.add_parser("status", help="show whether a lab's hosts run")
    _name_option(status)
    status.set_defaults(handler=_status)

    down = commands.add_parser("down", help="take a lab down and remove it")
    _name_option(down)
    down.set_defaults(handler=_down)

    listing = commands.add_parser("list", help="list the labs on this machine")
    listing.set_defaults(handler=_list)


def _name_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="demo", help="lab name (default: demo)")


def _up(args: argparse.Namespace) -> int:
    hosts = [host.strip() for host in args.hosts.split(",") if host.strip()]
    lifecycle.up(
        args.name, hosts, platform=args.platform, images=parse_images(args.image)
    )
    return 0


def parse_images(options: Sequence[str]) -> dict[str, Path]:
    """``--image HOST=TARBALL`` options as a mapping; LabError naming the fix."""
    images: dict[str, Path] = {}
    for option in options:
        host, sep, path = option.partition("=")
        if not sep or not host.strip() or not path.strip():
            raise LabError(
                f"--image {option!r}: write it as HOST=TARBALL, e.g. "
                "--image db1=/var/tmp/db-debian12.tar.zst"
            )
        if host.strip() in images:
            raise LabError(f"--image names {host.strip()} twice: give one per host")
        images[host.strip()] = Path(path.strip())
    return images


def _down(args: argparse.Namespace) -> int:
    lifecycle.down(args.name)
    return 0


def _status(args: argparse.Namespace) -> int:
    current = health.status(args.name)
    lab = current.state
    proxy = "running" if current.proxy_running else "NOT running"
    print(
        f"lab {lab.name} ({current.phase}, {lab.platform}): {lab.subnet} {lab.subnet6}"
    )
    for host_name, image in lab.images.items():
        print(f"  {host_name} booted from image {image}")
    print(f"  apt proxy {lab.apt_proxy}: {proxy}")
    print(f"  {'host':<16}{'address':<16}{'nspawn':<10}ssh")
    for host in current.hosts:
        running = "running" if host.running else "DEAD"
        port = "open" if host.ssh_port_open else "CLOSED"
        print(f"  {host.name:<16}{host.address:<16}{running:<10}{port}")
    print(f"  ssh: ssh -F {lab.ssh_config} <host>")
    return 0 if current.healthy else 1


def _list(args: argparse.Namespace) -> int:
    names = state.list_labs()
    if not names:
        print("no labs on this machine")
    for name in names:
        found = state.find_state(name)
        if found is None:
            continue
        phase, lab = found
        verdict = "healthy" if health.status(name).healthy else "unhealthy"
        hosts = ",".join(lab.hosts)
        print(f"{name:<14}{phase:<10}{verdict:<11}{lab.subnet:<17}{hosts}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python -m pgfortress.lab.cli lab ...``."""
    parser = argparse.ArgumentParser(prog="pgfortress")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output")
    add_lab_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
