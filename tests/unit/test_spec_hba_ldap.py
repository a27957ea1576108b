"""pg_hba ``ldap`` rules: accepted shapes, rendering, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from pgfortress.errors import SpecError
from pgfortress.plan import render_hba
from pgfortress.plan.hba import option_text, uses_ldap
from pgfortress.spec import HbaRule, from_host_data

BASE: dict[str, Any] = {
    "postgres_listen": ["eth0"],
    "postgres_tls": {"ca_dir": "/srv/ca"},
}
SIMPLE_BIND = {
    "ldapserver": "ldap1.example.net",
    "ldapscheme": "ldaps",
    "ldapprefix": "uid=",
    "ldapsuffix": ",ou=people,dc=example,dc=net",
}


def ldap_rule(**overrides: Any) -> dict[str, Any]:
    rule = {
        "databases": "app",
        "users": "+people",
        "address": "10.0.0.0/24",
        "method": "ldap",
        "options": SIMPLE_BIND,
    }
    return rule | overrides


def options(**changes: str | None) -> dict[str, str]:
    merged = SIMPLE_BIND | changes
    return {name: value for name, value in merged.items() if value is not None}


def live_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and line[0] != "#"]


@pytest.mark.parametrize(
    "rule_options",
    [
        pytest.param(SIMPLE_BIND, id="ldaps"),
        pytest.param(options(ldapscheme=None, ldaptls="1"), id="starttls"),
        pytest.param(options(ldapport="10636"), id="own-port"),
        pytest.param(options(ldapsuffix=None), id="prefix-only"),
        pytest.param(options(ldapprefix=None), id="suffix-only"),
        pytest.param(options(ldapserver="10.0.0.11"), id="server-address"),
        pytest.param(options(ldapserver="2001:db8::11"), id="server-ipv6"),
        pytest.param(options(ldapserver="ldap1.example.net ldap2"), id="two-servers"),
        pytest.param(options(ldapsuffix="@example.net", ldapprefix=None), id="upn"),
    ],
)
def test_simple_bind_rules_with_tls_are_accepted(rule_options: dict[str, str]) -> None:
    spec = from_host_data(
        "db1", BASE | {"postgres_hba": [ldap_rule(options=rule_options)]}
    )
    assert spec.hba[0].method == "ldap"
    assert uses_ldap(spec.hba)


def test_a_policy_without_ldap_rules_does_not_use_ldap() -> None:
    rule = HbaRule(databases=["app"], users=["u"], address="10.0.0.0/24")
    assert not uses_ldap([rule])


def test_ldap_rule_renders_with_dn_fragments_quoted() -> None:
    rule = HbaRule.model_validate(ldap_rule())
    line = live_lines(render_hba([rule]))[3]
    assert line.split()[:5] == ["hostssl", "app", "+people", "10.0.0.0/24", "ldap"]
    assert line.endswith(
        'ldap  ldapprefix="uid=" ldapscheme=ldaps ldapserver=ldap1.example.net '
        'ldapsuffix=",ou=people,dc=example,dc=net"'
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"ldapserver": "a b"}, 'ldapserver="a b"'),
        ({"ldaptls": "1", "ldapport": "389"}, "ldapport=389 ldaptls=1"),
        ({"map": "ops"}, "map=ops"),
        ({"ldapsuffix": "@example.net"}, "ldapsuffix=@example.net"),
    ],
)
def test_option_text_quotes_only_what_needs_it(
    values: dict[str, str], expected: str
) -> None:
    assert option_text(values) == expected


@pytest.mark.parametrize("value", ['a"b', "a\nb", "a\rb"])
def test_option_text_refuses_what_no_quoting_can_carry(value: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        option_text({"ldapsuffix": value})


BAD: list[Any] = [
    pytest.param(
        ldap_rule(type="host"),
        ["postgres_hba[0]", "type: an ldap rule on 'host'", "hostssl rules only"],
        id="ldap-on-host",
    ),
    pytest.param(
        ldap_rule(type="hostnossl"),
        ["an ldap rule on 'hostnossl'", "hostssl rules only"],
        id="ldap-on-hostnossl",
    ),
    pytest.param(
        ldap_rule(type="local", address=None),
        ["an ldap rule on 'local'", "hostssl rules only"],
        id="ldap-on-local",
    ),
    pytest.param(
        ldap_rule(options=options(ldapscheme=None)),
        ["needs TLS to the directory", "ldapscheme=ldaps", "ldaptls=1"],
        id="no-tls-to-directory",
    ),
    pytest.param(
        ldap_rule(options=options(ldapscheme="ldap")),
        ["ldapscheme='ldap'", "without TLS", "use ldapscheme=ldaps"],
        id="scheme-ldap",
    ),
    pytest.param(
        ldap_rule(options=options(ldapscheme=None, ldaptls="0")),
        ["ldaptls='0'", "use ldaptls=1"],
        id="ldaptls-0",
    ),
    pytest.param(
        ldap_rule(options=options(ldaptls="1")),
        ["both ask for TLS", "keep one"],
        id="ldaps-and-starttls",
    ),
    pytest.param(
        ldap_rule(options=options(ldapserver=None)),
        ["needs ldapserver"],
        id="missing-server",
    ),
    pytest.param(
        ldap_rule(options=options(ldapserver="ldap1:636")),
        ["ldapserver='ldap1:636' is not a host name", "ldapport"],
        id="port-in-server",
    ),
    pytest.param(
        ldap_rule(options=options(ldapserver="ldaps://ldap1")),
        ["is not a host name or IP address"],
        id="url-in-server",
    ),
    pytest.param(
        ldap_rule(options=options(ldapport="70000")),
        ["ldapport='70000' is not a TCP port", "1 to 65535"],
        id="port-too-big",
    ),
    pytest.param(
        ldap_rule(options=options(ldapport="0")),
        ["ldapport='0' is not a TCP port"],
        id="port-zero",
    ),
    pytest.param(
        ldap_rule(options=options(ldapport="ldaps")),
        ["ldapport='ldaps' is not a TCP port"],
        id="port-not-a-number",
    ),
    pytest.param(
        ldap_rule(options=options(ldapprefix=None, ldapsuffix=None)),
        ["needs ldapprefix and/or ldapsuffix"],
        id="no-bind-dn",
    ),
    pytest.param(
        ldap_rule(options=options(ldapbasedn="dc=example,dc=net")),
        ["'ldapbasedn' belongs to LDAP search+bind mode", "ldapprefix/ldapsuffix"],
        id="search-bind-basedn",
    ),
    pytest.param(
        ldap_rule(options=options(ldapbindpasswd="hunter2")),
        ["'ldapbindpasswd' belongs to LDAP search+bind mode", "password"],
        id="search-bind-password",
    ),
    pytest.param(
        ldap_rule(options=options(ldapsearchfilter="(uid=$username)")),
        ["'ldapsearchfilter' belongs to LDAP search+bind mode"],
        id="search-bind-filter",
    ),
    pytest.param(
        ldap_rule(options=options(ldapurl="ldaps://ldap1/dc=x?uid")),
        ["'ldapurl' is not accepted", "ldapserver, ldapport"],
        id="ldapurl",
    ),
    pytest.param(
        ldap_rule(options=options(clientcert="verify-full")),
        ["'clientcert' is not an option of method 'ldap'"],
        id="option-of-another-method",
    ),
    pytest.param(
        ldap_rule(options=options(ldapsuffix=',dc=x" ldapscheme="ldap')),
        ["ldapsuffix: the value contains a double quote"],
        id="quote-injection",
    ),
    pytest.param(
        ldap_rule(options=options(ldapsuffix=",dc=x\nhost all all 0.0.0.0/0 trust")),
        ["ldapsuffix: the value contains a line break", "one line"],
        id="newline-injection",
    ),
    pytest.param(
        ldap_rule(options=options(ldapprefix="uid=\t")),
        ["ldapprefix: the value contains a line break or another control"],
        id="tab-in-value",
    ),
    pytest.param(
        ldap_rule(options=options(ldapprefix=" uid=")),
        ["ldapprefix=' uid=' starts or ends with whitespace"],
        id="leading-space",
    ),
    pytest.param(
        ldap_rule(options=options(ldapprefix="")),
        ["ldapprefix is empty"],
        id="empty-value",
    ),
    pytest.param(
        ldap_rule(options=options(ldapsuffix="x" * 600)),
        ["longer than 512 characters"],
        id="huge-value",
    ),
    pytest.param(
        ldap_rule(method="ldap", options={}),
        ["ldapserver"],
        id="no-options",
    ),
    pytest.param(
        ldap_rule(comment="people\rhost all all 0.0.0.0/0 trust"),
        ["comment: must be a single line"],
        id="carriage-return-in-comment",
    ),
    pytest.param(
        {
            "databases": "app",
            "users": "ops",
            "address": "10.0.0.0/24",
            "method": "cert",
            "options": {"map": "ops\nhost all all 0.0.0.0/0 trust"},
        },
        ["options: map: the value contains a line break"],
        id="newline-in-cert-map",
    ),
    pytest.param(
        ldap_rule(method="ldap", options=options(ldapport=636)),  # type: ignore[arg-type]
        ["options.ldapport", "write a string in quotes"],
        id="port-as-number",
    ),
]


@pytest.mark.parametrize(("rule", "fragments"), BAD)
def test_bad_ldap_rules_are_refused_naming_field_and_fix(
    rule: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(SpecError) as caught:
        from_host_data("db1", BASE | {"postgres_hba": [rule]})
    message = str(caught.value)
    assert message.startswith("host db1: postgres_hba[0]")
    for fragment in fragments:
        assert fragment in message, message


def test_search_bind_password_is_not_repeated_in_the_error() -> None:
    rule = ldap_rule(options=options(ldapbindpasswd="hunter2-secret"))
    with pytest.raises(SpecError) as caught:
        from_host_data("db1", BASE | {"postgres_hba": [rule]})
    assert "hunter2-secret" not in str(caught.value)
