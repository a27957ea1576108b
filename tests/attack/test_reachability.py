"""Who can reach which port: from the client network only the gateway's.

client1 stands on the client network: PostgreSQL's port and SSH on every
host must not even accept its connections (the host firewall drops them),
while the gateway's port answers. The control machine stands on the admin
network and reaches SSH and PostgreSQL.
"""

from __future__ import annotations

import socket

import pytest

from .conftest import Target

pytestmark = pytest.mark.lab

CONNECTS = """
result = {}
for name, host, port in DATA["ports"]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        result[name] = "open"
    except OSError as error:
        result[name] = type(error).__name__
"""


def _from_client(target: Target) -> dict[str, str]:
    ports = [
        ("gateway https", target.gateway_address, 8443),
        ("gateway ssh", target.gateway_address, 22),
        ("gateway metrics", target.gateway_address, 9187),
        ("postgres", target.db_address, 5432),
        ("database ssh", target.db_address, 22),
    ]
    answer: dict[str, str] = target.client.run(CONNECTS, {"ports": ports})
    return answer


@pytest.mark.control("cis:5.2")
def test_from_the_client_network_only_the_gateway_port_answers(
    target: Target,
) -> None:
    reached = _from_client(target)
    assert reached.pop("gateway https") == "open"
    assert {name: how for name, how in reached.items() if how == "open"} == {}


def test_from_the_admin_network_ssh_and_postgres_answer(target: Target) -> None:
    for host, port in [
        (target.db_address, 22),
        (target.db_address, 5432),
        (target.gateway_address, 22),
        (target.gateway_address, 8443),
    ]:
        socket.create_connection((host, port), timeout=3).close()
