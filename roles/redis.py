"""Provisioning role: a Redis for the gateways' shared rate-limit counters.

Inventory data read: ``redis_listen`` (the host's address), ``redis_port``
(default 6379), ``redis_password_secret`` (its name in the secret store,
generated on first use) and ``pgfortress_secrets_dir``.

What changes on the host: the ``redis-server`` package; /etc/redis/redis.conf
(0640 redis:redis, holding the password) bound to loopback and the named
address with protected mode and a password; the service restarts only when
that file changed.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pyinfra.api.deploy import deploy
from pyinfra.api.exceptions import DeployError
from pyinfra.context import host
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt, systemd

from pgfortress.errors import PgFortressError, SpecError
from pgfortress.plan._templates import render
from pgfortress.secrets import Secret, SecretStore

from .operations import secret_file
from .package_lists import refresh_package_lists

__all__ = ["redis"]


@deploy("Redis for shared gateway counters")
def redis() -> None:
    try:
        address, port, password = _settings()
    except PgFortressError as error:
        raise DeployError(str(error)) from error
    if "redis-server" not in host.get_fact(DebPackages):
        refresh_package_lists(name="Refresh package lists")
    apt.packages(name="Redis server", packages=["redis-server"], no_recommends=True)
    config = Secret(
        render(
            "redis/redis.conf.j2",
            addresses=["127.0.0.1", address],
            port=port,
            password=password.reveal(),
        )
    )
    written = secret_file(
        name="Redis configuration (holds its password)",
        dest="/etc/redis/redis.conf",
        content=config,
        user="redis",
        group="redis",
        mode="640",
    )
    systemd.service(
        name="Redis running and enabled",
        service="redis-server",
        running=True,
        enabled=True,
        restarted=written.changed,
    )


def _settings() -> tuple[str, int, Secret]:
    address = str(host.data.get("redis_listen", ""))
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise SpecError(
            f"host {host.name}: redis_listen: {address!r} is not an address; name "
            "the address of this host the gateways reach Redis on"
        ) from None
    port = int(host.data.get("redis_port", 6379))
    name = str(host.data.get("redis_password_secret", "redis/password"))
    secrets_dir = host.data.get("pgfortress_secrets_dir")
    if not secrets_dir:
        raise SpecError(
            f"host {host.name}: pgfortress_secrets_dir: required, to keep the "
            "Redis password"
        )
    return address, port, SecretStore(Path(secrets_dir)).get_or_create(name, length=40)
