"""The directory's plan: inventory checks, LDIF read and written, password hashes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from pgfortress.errors import SpecError
from pgfortress.plan.ldap import (
    ROOT_DN,
    config_changes,
    hash_password,
    parse_ldif,
    password_matches,
    people_changes,
    render_client_conf,
    slapd_services,
)
from pgfortress.secrets import Secret
from pgfortress.spec.ldap import LdapServerSpec, client_ca_file, ldap_from_host_data

DATA: dict[str, Any] = {
    "ldap_domain": "example.net",
    "ldap_listen": "10.0.0.11",
    "ldap_ca_dir": "/srv/ca",
    "ldap_people": [{"uid": "ada", "name": "Ada Lovelace"}],
    "pgfortress_secrets_dir": "/srv/secrets",
}
PEOPLE_DN = "ou=people,dc=example,dc=net"
ADA_DN = f"uid=ada,{PEOPLE_DN}"
PASSWORD = Secret("correct horse battery staple")


def spec(**changes: Any) -> LdapServerSpec:
    return ldap_from_host_data("ldap1", DATA | changes)


# What Debian's slapd package configures, read back after pgfortress's changes.
CONFIGURED = """\
dn: cn=config
olcTLSCACertificateFile: /etc/ldap/tls/ca.crt
olcTLSCertificateFile: /etc/ldap/tls/server.crt
olcTLSCertificateKeyFile: /etc/ldap/tls/server.key
olcTLSProtocolMin: 3.3
olcSecurity: simple_bind=128

dn: cn=module{0},cn=config
olcModuleLoad: {0}back_mdb
olcModuleLoad: {1}argon2

dn: olcDatabase={-1}frontend,cn=config
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=a
 uth manage by * break
olcPasswordHash: {ARGON2}

dn: olcDatabase={1}mdb,cn=config
olcSuffix: dc=example,dc=net
olcAccess: {0}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {1}to dn.subtree=ou=people,dc=example,dc=net by self read by users
  read by * none
olcAccess: {2}to * by users read by * none
olcRootDN: gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth
"""


def test_inventory_gives_dns_of_base_and_people() -> None:
    directory = spec()
    assert directory.base_dn == "dc=example,dc=net"
    assert directory.people_dn == PEOPLE_DN
    assert directory.person_dn("ada") == ADA_DN


@pytest.mark.parametrize(
    ("changes", "fragments"),
    [
        ({"ldap_domain": "Example"}, ["ldap_domain", "not a DNS domain"]),
        ({"ldap_listen": "ldap1"}, ["ldap_listen", "not an IP address"]),
        ({"ldap_listen": "0.0.0.0"}, ["ldap_listen", "every address"]),
        ({"ldap_people_ou": "people,dc=x"}, ["ldap_people_ou", "plain name"]),
        (
            {"ldap_people": [{"uid": "Ada Lovelace", "name": "Ada"}]},
            ["ldap_people[0].uid", "plain login name"],
        ),
        (
            {"ldap_people": [{"uid": "ada", "name": "Ada\nuid: root"}]},
            ["ldap_people[0].name", "one line"],
        ),
        (
            {"ldap_people": [{"uid": "ada", "name": "A"}, {"uid": "ada", "name": "B"}]},
            ["ldap_people", "'ada' is listed twice"],
        ),
        ({"ldap_dns_names": ["bad name"]}, ["ldap_dns_names", "not a DNS name"]),
        ({"ldap_domian": "x.y"}, ["ldap_domian: unknown key", "ldap_domain"]),
    ],
)
def test_bad_directory_data_is_refused(
    changes: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        spec(**changes)
    assert str(caught.value).startswith("host ldap1: ")
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_missing_keys_name_the_reference() -> None:
    with pytest.raises(SpecError, match="ldap_listen: is required; see docs"):
        ldap_from_host_data(
            "ldap1", {k: v for k, v in DATA.items() if k != "ldap_listen"}
        )


def test_client_ca_file_must_hold_a_pem_certificate(tmp_path: Path) -> None:
    assert client_ca_file("db1", {}) is None
    with pytest.raises(SpecError, match=r"ldap_client_ca_file: 'relative\.pem'"):
        client_ca_file("db1", {"ldap_client_ca_file": "relative.pem"})
    empty = tmp_path / "ca.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(SpecError, match="holds no PEM certificate"):
        client_ca_file("db1", {"ldap_client_ca_file": str(empty)})
    empty.write_text("-----BEGIN CERTIFICATE-----\n")
    assert client_ca_file("db1", {"ldap_client_ca_file": str(empty)}) == empty


def test_client_conf_demands_a_verified_certificate() -> None:
    lines = [line.split() for line in render_client_conf().splitlines()]
    settings = {line[0]: line[1] for line in lines if line and line[0][0] != "#"}
    assert settings == {
        "TLS_CACERT": "/etc/ldap/pgfortress-directory-ca.crt",
        "TLS_REQCERT": "demand",
        "TLS_PROTOCOL_MIN": "3.3",
    }


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("10.0.0.11", "ldap://10.0.0.11/ ldaps://10.0.0.11/ ldapi:///"),
        ("2001:db8::11", "ldap://[2001:db8::11]/ ldaps://[2001:db8::11]/ ldapi:///"),
    ],
)
def test_slapd_listens_on_the_named_address_and_the_socket(
    listen: str, expected: str
) -> None:
    assert slapd_services(listen) == expected


def test_ldif_is_parsed_with_folded_lines_and_base64() -> None:
    encoded = base64.b64encode(b"{ARGON2}$argon2id$x").decode()
    entries = parse_ldif(
        f"dn: {ADA_DN}\nobjectClass: inetOrgPerson\ncn: Ada\n  Lovelace\n"
        f"userPassword:: {encoded}\n\ndn: {PEOPLE_DN}\nou: people\n"
    )
    assert entries[ADA_DN] == {
        "objectClass": ["inetOrgPerson"],
        "cn": ["Ada Lovelace"],
        "userPassword": ["{ARGON2}$argon2id$x"],
    }
    assert entries[PEOPLE_DN] == {"ou": ["people"]}


def test_fresh_slapd_gets_every_setting_and_loses_its_admin_password() -> None:
    ldif = config_changes(spec(), None)
    assert ldif.startswith(
        "dn: cn=module{0},cn=config\nchangetype: modify\nadd: olcModuleLoad\n"
        "olcModuleLoad: argon2\n"
    )
    for line in (
        "olcSecurity: simple_bind=128",
        "olcTLSProtocolMin: 3.3",
        "olcTLSCertificateKeyFile: /etc/ldap/tls/server.key",
        "olcPasswordHash: {ARGON2}",
        f"olcRootDN: {ROOT_DN}",
        "olcAccess: to * by users read by * none",
    ):
        assert line in ldif, line
    assert ldif.index("argon2") < ldif.index("olcPasswordHash")
    assert ldif.endswith("-\nreplace: olcRootPW\n")


def test_configured_slapd_needs_no_change() -> None:
    assert config_changes(spec(), parse_ldif(CONFIGURED)) == ""


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("olcSecurity: simple_bind=128", "olcSecurity: ssf=0"),
            "dn: cn=config\nchangetype: modify\nreplace: olcSecurity\n"
            "olcSecurity: simple_bind=128\n",
        ),
        (
            ("olcModuleLoad: {1}argon2\n", ""),
            "dn: cn=module{0},cn=config\nchangetype: modify\nadd: olcModuleLoad\n"
            "olcModuleLoad: argon2\n",
        ),
        (
            ("olcRootDN: gidNumber", "olcRootPW: {SSHA}x\nolcRootDN: gidNumber"),
            "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
            "replace: olcRootPW\n",
        ),
        (
            ("{2}to * by users read", "{2}to * by * read"),
            "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcAccess\n"
            "olcAccess: to attrs=userPassword by self =xw by anonymous auth by * none\n"
            "olcAccess: to dn.subtree=ou=people,dc=example,dc=net by self read by "
            "users read by * none\nolcAccess: to * by users read by * none\n",
        ),
    ],
)
def test_one_drifted_setting_is_put_back_alone(
    edit: tuple[str, str], expected: str
) -> None:
    drifted = parse_ldif(CONFIGURED.replace(*edit))
    assert config_changes(spec(), drifted) == expected


def test_password_hashes_are_salted_argon2id_and_verify() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.reveal().startswith("{ARGON2}$argon2id$v=19$m=19456,t=2,p=1$")
    assert first.reveal() != second.reveal()
    assert str(first) != first.reveal()
    assert password_matches(first.reveal(), PASSWORD)
    assert not password_matches(first.reveal(), Secret("wrong password"))
    assert not password_matches("{SSHA}abcdef", PASSWORD)
    assert not password_matches("{ARGON2}$argon2id$garbage", PASSWORD)
    assert not password_matches(first.reveal().replace("argon2id", "argon2i"), PASSWORD)
    salt_and_digest = first.reveal().split("$", 4)[4]
    greedy = f"{{ARGON2}}$argon2id$v=19$m=99999999,t=2,p=1${salt_and_digest}"
    assert not password_matches(greedy, PASSWORD)


def test_hashes_with_other_costs_still_verify() -> None:
    """A hash set by hand (slappasswd's defaults, say) is kept while it matches."""
    salt = b"0123456789abcdef"
    digest = Argon2id(
        salt=salt, length=32, iterations=3, lanes=4, memory_cost=65536
    ).derive(PASSWORD.reveal().encode())
    salt_text = base64.b64encode(salt).decode().rstrip("=")
    digest_text = base64.b64encode(digest).decode().rstrip("=")
    stored = f"{{ARGON2}}$argon2id$v=19$m=65536,t=3,p=4${salt_text}${digest_text}"
    assert password_matches(stored, PASSWORD)
    assert not password_matches(stored, Secret("wrong password"))


def people(
    *entries: tuple[str, dict[str, list[str]]],
) -> dict[str, dict[str, list[str]]]:
    return {PEOPLE_DN: {"objectClass": ["organizationalUnit"]}} | dict(entries)


def ada(password: Secret = PASSWORD, name: str = "Ada Lovelace") -> tuple[str, Any]:
    stored = hash_password(password).reveal()
    attributes = {
        "objectClass": ["inetOrgPerson"],
        "cn": [name],
        "userPassword": [stored],
    }
    return ADA_DN, attributes


def test_new_directory_gets_the_ou_and_each_person_with_a_hash() -> None:
    plan = people_changes(spec(), None, {"ada": PASSWORD})
    ldif = plan.ldif.reveal()
    assert plan.summary == [f"add {PEOPLE_DN}", "add person ada"]
    assert f"dn: {ADA_DN}\nchangetype: add\nobjectClass: inetOrgPerson\n" in ldif
    assert "sn: Lovelace\n" in ldif
    assert PASSWORD.reveal() not in ldif
    stored = ldif.split("userPassword: ")[1].splitlines()[0]
    assert password_matches(stored, PASSWORD)
    assert str(plan.ldif) != ldif


def test_people_in_place_with_their_password_need_no_change() -> None:
    plan = people_changes(spec(), people(ada()), {"ada": PASSWORD})
    assert (plan.ldif.reveal(), plan.summary) == ("", [])


def test_a_new_password_or_name_updates_the_person() -> None:
    plan = people_changes(
        spec(), people(ada(Secret("old password"), "Ada")), {"ada": PASSWORD}
    )
    ldif = plan.ldif.reveal()
    assert plan.summary == ["update person ada"]
    assert "replace: cn\ncn: Ada Lovelace\n-\nreplace: userPassword\n" in ldif


def test_people_not_in_the_inventory_are_removed() -> None:
    grace = (
        f"uid=grace,{PEOPLE_DN}",
        {"objectClass": ["inetOrgPerson"], "uid": ["grace"]},
    )
    plan = people_changes(spec(), people(ada(), grace), {"ada": PASSWORD})
    assert plan.summary == ["remove person grace"]
    assert plan.ldif.reveal() == f"dn: uid=grace,{PEOPLE_DN}\nchangetype: delete\n"
