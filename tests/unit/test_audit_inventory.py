"""Inventory hosts and the ssh_config the audit connects with."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgfortress.audit import AuditError
from pgfortress.audit.inventory import inventory_hosts, ssh_config_text


def test_group_data_is_merged_and_host_data_wins(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.py"
    inventory.write_text(
        "db = ([('db1', {'ssh_hostname': '192.0.2.10', 'ssh_user': 'admin'})],\n"
        "      {'ssh_user': 'root', 'ssh_port': 2222})\n"
        "gw = ['gw1']\n"
        "_private = ['not-a-host']\n"
        "CA_DIR = '/somewhere'\n"
    )
    hosts = inventory_hosts(inventory)
    assert hosts == {
        "db1": {
            "ssh_hostname": "192.0.2.10",
            "ssh_user": "admin",
            "ssh_port": 2222,
            "_groups": ["db"],
        },
        "gw1": {"_groups": ["gw"]},
    }


def test_ssh_config_never_prompts_and_uses_the_inventory_key() -> None:
    text = ssh_config_text(
        {
            "db1": {
                "ssh_hostname": "192.0.2.10",
                "ssh_user": "root",
                "ssh_key": "/lab/key",
                "ssh_known_hosts_file": "/lab/known hosts",
                "ssh_strict_host_key_checking": "yes",
                "ssh_look_for_keys": False,
            },
            "gw1": {"ssh_strict_host_key_checking": False},
        }
    )
    assert text == (
        "Host db1\n"
        "    BatchMode yes\n"
        "    ForwardAgent no\n"
        "    HostName 192.0.2.10\n"
        "    User root\n"
        "    IdentityFile /lab/key\n"
        '    UserKnownHostsFile "/lab/known hosts"\n'
        "    StrictHostKeyChecking yes\n"
        "    IdentitiesOnly yes\n"
        "\n"
        "Host gw1\n"
        "    BatchMode yes\n"
        "    ForwardAgent no\n"
        "    StrictHostKeyChecking no\n"
    )


@pytest.mark.parametrize(
    ("hosts", "fragment"),
    [
        ({"db 1": {}}, "inventory host 'db 1': not a host name"),
        ({"db1": {"ssh_user": "root\nProxyCommand x"}}, "db1: ssh_user"),
        ({"db1": {"ssh_key": 'a"b'}}, "remove line breaks and quotes"),
    ],
)
def test_values_that_would_change_the_ssh_config_are_refused(
    hosts: dict[str, dict[str, str]], fragment: str
) -> None:
    with pytest.raises(AuditError, match=fragment):
        ssh_config_text(hosts)
