"""TLS on PostgreSQL's port and on the gateway, scanned with sslyze from the
control machine: TLS 1.2 or newer only, no weak or anonymous cipher, forward
secrecy, and a chain to the toolkit's CA that names the address clients use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ._sslyze import scan
from .conftest import Target

pytestmark = pytest.mark.lab

OLD_PROTOCOLS = [
    "ssl_2_0_cipher_suites",
    "ssl_3_0_cipher_suites",
    "tls_1_0_cipher_suites",
    "tls_1_1_cipher_suites",
]
WEAK = re.compile(r"NULL|anon|EXPORT|RC4|DES|MD5|IDEA|SEED|PSK|SRP")


@pytest.fixture(scope="module")
def scans(target: Target, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sslyze")
    jobs = {
        "postgres": (f"{target.db_address}:5432", "postgres"),
        "gateway": (f"{target.gateway_address}:8443", None),
    }
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {
            name: pool.submit(scan, where, target.ca_file, out / f"{name}.json", tls)
            for name, (where, tls) in jobs.items()
        }
        return {name: future.result() for name, future in futures.items()}


def _result(server: Any, command: str) -> Any:
    attempt = server["scan_result"][command]
    assert attempt["status"] == "COMPLETED", (command, attempt.get("error_trace"))
    return attempt["result"]


def _accepted(server: Any, command: str) -> Iterator[Any]:
    for accepted in _result(server, command)["accepted_cipher_suites"]:
        yield accepted["cipher_suite"]


@pytest.mark.control("cis:6.8", "devsec:postgres-12")
@pytest.mark.parametrize("service", ["postgres", "gateway"])
def test_nothing_below_tls_1_2_is_accepted(scans: dict[str, Any], service: str) -> None:
    server = scans[service]
    assert server["scan_status"] == "COMPLETED", server
    for command in OLD_PROTOCOLS:
        assert list(_accepted(server, command)) == [], (service, command)
    assert list(_accepted(server, "tls_1_2_cipher_suites")) or list(
        _accepted(server, "tls_1_3_cipher_suites")
    )


@pytest.mark.control("cis:6.8", "devsec:postgres-12")
@pytest.mark.parametrize("service", ["postgres", "gateway"])
def test_no_weak_or_anonymous_cipher(scans: dict[str, Any], service: str) -> None:
    suites = [
        suite
        for command in ("tls_1_2_cipher_suites", "tls_1_3_cipher_suites")
        for suite in _accepted(scans[service], command)
    ]
    weak = [
        suite["name"]
        for suite in suites
        if WEAK.search(suite["name"])
        or suite["is_anonymous"]
        or suite["key_size"] < 128
    ]
    assert weak == [], (service, weak)
    tls12 = [s["name"] for s in _accepted(scans[service], "tls_1_2_cipher_suites")]
    without_forward_secrecy = [name for name in tls12 if "_ECDHE_" not in name]
    assert without_forward_secrecy == [], (service, without_forward_secrecy)


@pytest.mark.control("cis:6.8", "devsec:postgres-11")
@pytest.mark.parametrize("service", ["postgres", "gateway"])
def test_the_chain_leads_to_the_toolkits_ca_and_names_the_address(
    scans: dict[str, Any], service: str, target: Target
) -> None:
    deployments = _result(scans[service], "certificate_info")["certificate_deployments"]
    assert deployments
    for deployment in deployments:
        validations = deployment["path_validation_results"]
        ours = [
            v
            for v in validations
            if v["trust_store"]["path"]
            and Path(v["trust_store"]["path"]).name == target.ca_file.name
        ]
        assert ours, [v["trust_store"] for v in validations]
        assert all(v["validation_error"] is None for v in ours), ours
        assert all(v["verified_certificate_chain"] for v in ours)
        leaf = deployment["received_certificate_chain"][0]
        names = leaf["subject_alternative_name"]
        address = target.db_address if service == "postgres" else target.gateway_address
        assert address in names["ip_addresses"], names
