"""Lab and host name validation and the kernel names derived from them."""

from __future__ import annotations

import pytest

from pgfortress.errors import LabError
from pgfortress.lab.names import (
    bridge_name,
    check_host_names,
    check_lab_name,
    groups_of,
    machine_name,
    netns_name,
    veth_name,
)


@pytest.mark.parametrize("name", ["demo", "a", "ci-2", "abcdefghijkl", "t1"])
def test_valid_lab_names_pass(name: str) -> None:
    assert check_lab_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Demo", "1lab", "-lab", "abcdefghijklm", "lab_1", "lab.1", "lab 1"]
)
def test_invalid_lab_names_name_the_rule(name: str) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        check_lab_name(name)


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ([], "at least one host"),
        (["db1", "DB2"], "invalid host name 'DB2'"),
        (["db-1"], "invalid host name"),
        (["control"], "reserved"),
        (["db1", "db1"], "repeat: db1"),
        ([f"h{i}" for i in range(21)], "at most 20 hosts"),
    ],
)
def test_bad_host_lists_are_refused(hosts: list[str], message: str) -> None:
    with pytest.raises(LabError, match=message):
        check_host_names(hosts)


def test_twenty_database_hosts_are_allowed() -> None:
    hosts = [f"db{n}" for n in range(1, 21)]
    assert check_host_names(hosts) == tuple(hosts)
    assert groups_of("db20") == ("db",)
    assert veth_name(255, 19) == "pgf255h19"


def test_good_host_list_is_kept_in_order() -> None:
    assert check_host_names(["gw1", "db1", "client1"]) == ("gw1", "db1", "client1")


@pytest.mark.parametrize(
    ("host", "groups"),
    [("db1", ("db",)), ("client1", ("client",)), ("gw12", ("gw",)), ("db", ("db",))],
)
def test_groups_drop_trailing_digits(host: str, groups: tuple[str, ...]) -> None:
    assert groups_of(host) == groups


def test_interface_names_fit_the_kernel_limit() -> None:
    assert bridge_name(255) == "pgfb255"
    assert veth_name(255, 7) == "pgf255h7"
    assert len(veth_name(255, 7)) <= 15


def test_namespace_and_machine_names_embed_lab_and_host() -> None:
    assert netns_name("demo", "db1") == "pgf-demo-db1"
    assert machine_name("ci-2", "gw1") == "pgf-ci-2-gw1"
