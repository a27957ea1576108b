"""The injection corpus in every part of a URL, sent from client1.

Each of the corpus's payloads goes into each slot an attacker controls: the
table name, select, order, filter columns, operators and values, embeds, rpc
names and arguments (in the query string and the body), bodies of writes and
headers. The gateway must answer every one with a 2xx or a clear 4xx, and the
database's statement log (``log_statement = all`` on this lab) must show each
payload only as a bound parameter, never in a statement's text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from .conftest import Target
from .payloads import MARKER, PAYLOADS

pytestmark = pytest.mark.lab

SUBJECTS = 24

# Runs on client1: every slot for every payload, subjects taken in turn so
# that no subject nears its rate limit.
CORPUS = r"""
api = Api(DATA["host"])
result = []
q = quote

JSON = {"Content-Type": "application/json"}

def slots(p):
    yield "table", "GET", "/" + q(p), {}, None
    yield "select", "GET", "/customers?select=" + q(p), {}, None
    yield "embed", "GET", "/customers?select=id," + q(p) + "(*)", {}, None
    yield "order", "GET", "/customers?order=" + q(p), {}, None
    yield "filter-column", "GET", "/customers?" + q(p) + "=eq.1", {}, None
    yield "filter-operator", "GET", "/customers?id=" + q(p) + ".1", {}, None
    yield "filter-value", "GET", "/customers?name=eq." + q(p), {}, None
    yield "filter-in", "GET", "/customers?id=in.(" + q(p) + ")", {}, None
    yield "limit", "GET", "/customers?limit=" + q(p), {}, None
    yield "rpc-name", "POST", "/rpc/" + q(p), JSON, "{}"
    yield "rpc-argument-value", "POST", "/rpc/add", JSON, json.dumps({"a": p, "b": 1})
    yield "rpc-argument-name", "POST", "/rpc/add", JSON, json.dumps({p: 1, "b": 1})
    yield "rpc-get-argument", "GET", "/rpc/add?a=" + q(p) + "&b=1", {}, None
    yield "update-value", "PATCH", "/customers?id=eq.-1", JSON, json.dumps({"name": p})
    yield "update-column", "PATCH", "/customers?id=eq.-1", JSON, json.dumps({p: "x"})
    yield "columns", "POST", "/customers?columns=" + q(p), \
        {"Content-Type": "application/json", "Prefer": "return=minimal"}, "[]"
    if not any(c in p for c in "\r\n\x00"):
        raw = p.encode("utf-8")
        yield "header-prefer", "GET", "/customers", {"Prefer": raw}, None
        yield "header-range", "GET", "/customers", {"Range": raw}, None
        yield "header-profile", "GET", "/customers", {"Accept-Profile": raw}, None
        yield "header-content-type", "PATCH", "/customers?id=eq.-1", \
            {"Content-Type": raw}, "{}"

number = 0
for payload in DATA["payloads"]:
    for slot, method, path, headers, body in slots(payload):
        token = DATA["tokens"][number % len(DATA["tokens"])]
        number += 1
        headers = dict(headers, Authorization="Bearer " + token)
        status, answer_headers, text = api.call(method, path, headers, body)
        # Errors whole, so that they can be read as JSON; rows are not needed.
        result.append([slot, payload, status, text if status >= 400 else ""])
"""

# What only the database or the SQL builder would write: a message carrying
# one of these leaked more than the gateway's own words. (SQL keywords are
# not on the list: a refused name is quoted back, and payloads contain them.)
LEAKS = re.compile(
    r"pgf_[a-z0-9]|syntax error|LINE \d+:|HINT|DETAIL|CONTEXT|Traceback|psycopg"
    r"|\$\d+|ERROR:",
)


@pytest.fixture(scope="module")
def corpus_answers(target: Target) -> list[list[object]]:
    tokens = [target.token(sub=f"injector-{n}") for n in range(SUBJECTS)]
    data = {"host": target.gateway_address, "payloads": PAYLOADS, "tokens": tokens}
    answers: list[list[object]] = target.client.run(CORPUS, data)
    return answers


def test_the_corpus_is_large_and_reaches_every_slot(
    corpus_answers: list[list[object]],
) -> None:
    assert len(PAYLOADS) >= 100
    slots = {slot for slot, *_ in corpus_answers}
    assert len(slots) >= 20, slots
    # Header slots are skipped for payloads with CR, LF or NUL in them.
    assert len(corpus_answers) >= 16 * len(PAYLOADS)


def test_every_payload_gets_a_clear_answer_never_a_500(
    corpus_answers: list[list[object]],
) -> None:
    failures = [
        (slot, payload, status, text)
        for slot, payload, status, text in corpus_answers
        if not isinstance(status, int) or status >= 500
    ]
    assert failures == [], failures[:5]
    unclear = []
    for slot, payload, status, text in corpus_answers:
        assert isinstance(status, int)
        assert isinstance(text, str)
        if status >= 400 and not _clear_error(text):
            unclear.append((slot, payload, status, text[:300]))
    assert unclear == [], unclear[:5]


def _clear_error(text: str) -> bool:
    """A JSON error with a code and the gateway's own message, nothing more."""
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) >= {"code", "message"}
        and not LEAKS.search(str(body["message"]))
    )


def _log_entries(log: str) -> Iterator[str]:
    """One entry per log record: a first line with its prefix plus the
    continuation lines that a multi-line value or statement brings."""
    entry: list[str] = []
    for line in log.splitlines():
        if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) and entry:
            yield "\n".join(entry)
            entry = []
        entry.append(line)
    if entry:
        yield "\n".join(entry)


def _statement_text(entry: str) -> str:
    """The SQL of a ``LOG: execute <name>: …`` or ``LOG: statement: …`` record."""
    text = re.split(r"LOG:\s+(?:execute [^:]*|statement): ", entry, maxsplit=1)[1]
    return " ".join(text.split())


# Records in which a payload may appear: the bound parameters of a statement,
# and a bound value that its column's type refused. PostgreSQL 15 writes
# "DETAIL:  parameters: $1 = ...", 16 and later "DETAIL:  Parameters: ...".
_VALUE_RECORD = re.compile(
    r"(DETAIL|CONTEXT):\s+([Pp]arameters|unnamed portal parameter)|"
    r"ERROR:\s+(invalid input|value too long|malformed|invalid byte|"
    r"value \".*\" is out of range|numeric field overflow)",
)

# The statements the gateway sends: its request setup; reads, writes and
# calls built from the catalog; its schema cache query, its start-up check of
# the authenticator's memberships, and its schema-reload listener.
_SHAPES = [
    re.compile(pattern)
    for pattern in (
        r"^SELECT set_config\('role', \$1, true\), ",
        r"^SELECT pgf_agg\.body AS body, ",
        r'^WITH "pgf_\d+" AS \((INSERT INTO|UPDATE|DELETE FROM) "api"\.',
        r"^SELECT .* AS body, NULL::bigint AS total",
        r"^SELECT json_build_object\( 'schema', n\.nspname, ",
        r"^SELECT wanted\.name FROM unnest\(\$1::text\[\]\) AS wanted\(name\) ",
        r"^LISTEN pgrst$",
    )
]


def test_payloads_reach_sql_only_as_bound_parameters(
    target: Target, corpus_answers: list[list[object]]
) -> None:
    entries = list(_log_entries(target.db_log()))
    statements = [e for e in entries if re.search(r"LOG:\s+(execute|statement)", e)]
    from_gateway = [e for e in statements if "user=authenticator" in e]
    # log_statement = all really logged the gateway's statements.
    assert len(from_gateway) > len(PAYLOADS), len(from_gateway)
    texts = {_statement_text(e) for e in from_gateway}
    unexpected = sorted(t[:200] for t in texts if not any(s.search(t) for s in _SHAPES))
    assert unexpected == [], "\n".join(unexpected[:10])
    carried = [e for e in entries if MARKER in e]
    assert carried, "no payload reached the database at all"
    injected = [e for e in carried if not _VALUE_RECORD.search(e)]
    assert injected == [], "\n---\n".join(injected[:5])


def test_the_tables_survived(target: Target) -> None:
    answer = target.client.run(
        'api = Api(DATA["host"])\n'
        'result = api.call("GET", "/customers?select=id,name&order=id", '
        '{"Authorization": "Bearer " + DATA["token"]})[::2]',
        {"host": target.gateway_address, "token": target.token()},
    )
    status, text = answer
    assert status == 200, text
    assert json.loads(text) == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]
