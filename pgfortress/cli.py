"""The pgfortress command: the certificate authority, the lab, the audit, images."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import jwt

from . import __version__, tls
from .errors import PgFortressError, SecretStoreError, SpecError
from .secrets import SecretStore

__all__ = ["main"]


def _ca_init(args: argparse.Namespace) -> int:
    ca = tls.init_ca(Path(args.dir), args.name, valid_days=args.days)
    print(f"created CA {args.name!r} in {ca.directory} (key 0600, directory 0700)")
    return 0


def _ca_show(args: argparse.Namespace) -> int:
    ca = tls.load_ca(Path(args.dir))
    cert = ca.certificate
    print(f"subject:   {cert.subject.rfc4514_string()}")
    print(f"not after: {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    print(f"cert:      {ca.directory / 'ca.crt'}")
    return 0


def _secrets_rotate(args: argparse.Namespace) -> int:
    store = SecretStore(Path(args.store))
    name = f"{args.host}/{args.role}"
    store.rotate(name)
    print(
        f"new password for database role {args.role} on {args.host} is in "
        f"{store.path(name)} (the old one in {store.path(name + '.previous')}).\n"
        "Run the deploy to apply it: pyinfra <inventory> deploys/site.py"
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    if args.minutes <= 0:
        raise SpecError(
            f"--minutes {args.minutes}: a token must be valid for at least a "
            "minute; give a positive number"
        )
    try:
        secret = Path(args.secret_file).read_text().strip()
    except OSError as error:
        raise SecretStoreError(
            f"--secret-file {args.secret_file}: cannot read it "
            f"({error.strerror}); name the gateway's jwt-secret file"
        ) from None
    if len(secret.encode()) < 32:
        raise SecretStoreError(
            f"--secret-file {args.secret_file}: holds {len(secret.encode())} bytes; "
            "the gateway needs an HS256 secret of at least 32 bytes"
        )
    claims = {
        "role": args.role,
        "sub": args.subject,
        "exp": int(time.time()) + 60 * args.minutes,
    }
    print(jwt.encode(claims, secret, algorithm="HS256"))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgfortress", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output")
    commands = parser.add_subparsers(dest="command", required=True)

    ca = commands.add_parser("ca", help="the certificate authority on this machine")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    init = ca_commands.add_parser("init", help="create a CA in a new directory")
    init.add_argument("--dir", required=True, help="directory to create (mode 0700)")
    init.add_argument("--name", default="pgfortress CA", help="CA common name")
    init.add_argument("--days", type=int, default=3650, help="validity in days")
    init.set_defaults(handler=_ca_init)
    show = ca_commands.add_parser("show", help="check a CA and print its details")
    show.add_argument("--dir", required=True)
    show.set_defaults(handler=_ca_show)

    secret = commands.add_parser("secrets", help="passwords kept on this machine")
    secret_commands = secret.add_subparsers(dest="secrets_command", required=True)
    rotate = secret_commands.add_parser(
        "rotate", help="give a database role a new password at the next deploy"
    )
    rotate.add_argument("--store", required=True, help="pgfortress_secrets_dir")
    rotate.add_argument("--host", required=True, help="inventory host name")
    rotate.add_argument("role", help="database role name")
    rotate.set_defaults(handler=_secrets_rotate)

    token = commands.add_parser(
        "token", help="issue an HS256 token for the gateway (testing and demos)"
    )
    token.add_argument("--secret-file", required=True, help="the gateway's jwt-secret")
    token.add_argument("--role", required=True, help="database role to act as")
    token.add_argument("--subject", default="demo", help="the sub claim")
    token.add_argument("--minutes", type=int, default=60, help="validity")
    token.set_defaults(handler=_token)

    from .lab.cli import add_lab_commands

    add_lab_commands(commands)

    from .audit.cli import add_audit_command

    add_audit_command(commands)

    from .image.cli import add_image_command

    add_image_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except PgFortressError as error:
        print(f"pgfortress: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
