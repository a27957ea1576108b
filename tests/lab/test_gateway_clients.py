"""The official PostgREST clients, unmodified, against the gateway.

postgrest-py (PyPI ``postgrest``) runs in this process; postgrest-js (npm
``@supabase/postgrest-js``) runs under Node from a script beside this file.
Both talk HTTPS to the gateway served from here by :mod:`._gateway`, trust
only the lab CA, and go through select, filters, order, count, embedding,
insert, update, delete and rpc. Each client writes its own row ids, so the
order of the tests does not matter. They run once per platform: db1 on
Debian 12 (PostgreSQL 15), then on Debian 13 (PostgreSQL 17).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from postgrest import APIError, CountMethod, SyncPostgrestClient

from ._gateway import Gateway, token

pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
# Installed outside the work tree so no node_modules is ever committed; the
# pinned version is the one these tests were written against.
POSTGREST_JS = "@supabase/postgrest-js@2.119.2"
NPM_PREFIX = Path(os.environ.get("PGFORTRESS_NPM_CACHE", "/var/cache/pgfortress/npm"))


@pytest.fixture(scope="module")
def gateway(served_gateway: Gateway) -> Gateway:
    """db1 on Debian 12, then on Debian 13; the lab is shared with the other
    module that calls the served gateway (see :mod:`._gateway`)."""
    return served_gateway


@pytest.fixture
def py_client(gateway: Gateway) -> Iterator[SyncPostgrestClient]:
    headers = {"Authorization": f"Bearer {token()}"}
    session = httpx.Client(
        base_url=gateway.url, verify=gateway.trust(), headers=headers, timeout=10
    )
    with (
        session,
        SyncPostgrestClient(
            gateway.url, schema="api", headers=headers, http_client=session
        ) as client,
    ):
        yield client


def test_postgrest_py_selects_with_columns_filters_and_order(
    py_client: SyncPostgrestClient,
) -> None:
    customers = py_client.from_("customers").select("id, name").order("id").execute()
    assert customers.data == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]

    by_customer = (
        py_client.from_("orders").select("id").eq("customer_id", 1).order("id")
    )
    assert by_customer.execute().data == [{"id": 10}, {"id": 11}]

    biggest = (
        py_client.from_("orders")
        .select("id", "total")
        .gt("total", 8)
        .order("total", desc=True)
        .limit(1)
        .execute()
    )
    assert biggest.data == [{"id": 11, "total": 20}]

    chosen = py_client.from_("orders").select("id").in_("id", [10, 12]).order("id")
    assert chosen.execute().data == [{"id": 10}, {"id": 12}]

    named = py_client.from_("customers").select("name").like("name", "G*").execute()
    assert named.data == [{"name": "Grace"}]


def test_postgrest_py_counts_and_pages(
    py_client: SyncPostgrestClient,
) -> None:
    page = (
        py_client.from_("orders")
        .select("id", count=CountMethod.exact)
        .order("id")
        .range(1, 2)
        .execute()
    )
    assert page.data == [{"id": 11}, {"id": 12}]
    assert page.count == 3

    head = py_client.from_("orders").select("*", count=CountMethod.exact, head=True)
    assert head.execute().count == 3


def test_postgrest_py_reads_a_single_row_as_an_object(
    py_client: SyncPostgrestClient,
) -> None:
    ada = py_client.from_("customers").select("name").eq("id", 1).single().execute()
    assert ada.data == {"name": "Ada"}
    with pytest.raises(APIError):
        py_client.from_("customers").select("name").single().execute()


def test_postgrest_py_embeds_along_the_foreign_key(
    py_client: SyncPostgrestClient,
) -> None:
    answer = (
        py_client.from_("customers").select("name,orders(id)").eq("id", 1).execute()
    )
    (ada,) = answer.data
    assert _field(ada, "name") == "Ada"
    assert _ids(_field(ada, "orders")) == [10, 11]


def test_postgrest_py_inserts_updates_and_deletes(
    py_client: SyncPostgrestClient,
) -> None:
    customers = py_client.from_("customers")
    created = customers.insert({"id": 30, "name": "Py"}).execute()
    assert created.data == [{"id": 30, "name": "Py"}]

    many = customers.insert([{"id": 31, "name": "Py 31"}, {"id": 32, "name": "Py 32"}])
    assert _ids(many.execute().data) == [31, 32]

    changed = customers.update({"name": "Py 30"}).eq("id", 30).execute()
    assert changed.data == [{"id": 30, "name": "Py 30"}]

    removed = customers.delete().in_("id", [30, 31, 32]).execute()
    assert _ids(removed.data) == [30, 31, 32]
    left = customers.select("id").gte("id", 30).execute()
    assert left.data == []


def test_postgrest_py_calls_a_function(py_client: SyncPostgrestClient) -> None:
    # The client annotates arguments as strings, but sends any JSON value.
    arguments: dict[str, Any] = {"a": 2, "b": 40}
    assert py_client.rpc("add", arguments).execute().data == 42


def test_postgrest_py_reports_gateway_errors(py_client: SyncPostgrestClient) -> None:
    with pytest.raises(APIError) as raised:
        py_client.from_("nope").select("*").execute()
    assert raised.value.code == "PGF404"


def _field(row: Any, name: str) -> Any:
    assert isinstance(row, dict), row
    return row[name]


def _ids(rows: Any) -> list[int]:
    """The sorted ``id`` of JSON rows, whatever order they came in."""
    assert isinstance(rows, list), rows
    return sorted(int(_field(row, "id")) for row in rows)


@pytest.fixture(scope="module")
def js_results(gateway: Gateway) -> dict[str, dict[str, Any]]:
    """Every operation of postgrest_js_run.mjs, run once, by name."""
    node = shutil.which("node")
    assert node is not None, "the postgrest-js run needs Node.js on PATH"
    _install_postgrest_js()
    run = subprocess.run(
        [node, str(HERE / "clients" / "postgrest_js_run.mjs")],
        env=os.environ
        | {
            "GATEWAY_URL": gateway.url,
            "GATEWAY_TOKEN": token(),
            "POSTGREST_JS_PREFIX": str(NPM_PREFIX),
            "NODE_EXTRA_CA_CERTS": str(gateway.ca_file),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results: dict[str, dict[str, Any]] = json.loads(run.stdout)
    return results


def _install_postgrest_js() -> None:
    package = NPM_PREFIX / "node_modules" / "@supabase" / "postgrest-js"
    wanted = POSTGREST_JS.rpartition("@")[2]
    manifest = package / "package.json"
    if manifest.exists() and json.loads(manifest.read_text())["version"] == wanted:
        return
    npm = shutil.which("npm")
    assert npm is not None, "installing postgrest-js needs npm on PATH"
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    install = subprocess.run(
        [npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit", POSTGREST_JS],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]


def _ok(results: dict[str, dict[str, Any]], name: str) -> Any:
    result = results[name]
    assert result["error"] is None, f"{name}: {result}"
    return result["data"]


def test_postgrest_js_selects_with_columns_filters_and_order(
    js_results: dict[str, dict[str, Any]],
) -> None:
    assert _ok(js_results, "select_columns") == [
        {"id": 1, "name": "Ada"},
        {"id": 2, "name": "Grace"},
    ]
    assert _ok(js_results, "eq") == [{"id": 10}, {"id": 11}]
    assert _ok(js_results, "gt_order_limit") == [{"id": 11, "total": 20}]
    assert _ok(js_results, "in") == [{"id": 10}, {"id": 12}]
    assert _ok(js_results, "like") == [{"name": "Grace"}]


def test_postgrest_js_counts_and_pages(
    js_results: dict[str, dict[str, Any]],
) -> None:
    assert _ok(js_results, "count_exact") == [{"id": 10}, {"id": 11}]
    assert js_results["count_exact"]["count"] == 3
    assert js_results["count_head"]["count"] == 3
    assert _ok(js_results, "range") == [{"id": 11}, {"id": 12}]
    assert _ok(js_results, "maybe_single_none") is None


def test_postgrest_js_reads_a_single_row_as_an_object(
    js_results: dict[str, dict[str, Any]],
) -> None:
    assert _ok(js_results, "single") == {"name": "Ada"}
    assert js_results["single_of_many"]["status"] == 406


def test_postgrest_js_embeds_along_the_foreign_key(
    js_results: dict[str, dict[str, Any]],
) -> None:
    (ada,) = _ok(js_results, "embed")
    assert ada["name"] == "Ada"
    assert _ids(ada["orders"]) == [10, 11]


def test_postgrest_js_inserts_updates_and_deletes(
    js_results: dict[str, dict[str, Any]],
) -> None:
    assert _ok(js_results, "insert") == [{"id": 20, "name": "Js"}]
    assert js_results["insert"]["status"] == 201
    assert js_results["insert_many"]["status"] == 201
    # insert(...).single() answers the one row written as an object.
    assert js_results["insert_single"]["status"] == 201
    assert _ok(js_results, "insert_single") == {"id": 23}
    assert _ok(js_results, "after_insert_single") == [{"id": 23}]
    # A one-object write that matched two rows is undone and refused (406).
    refused = js_results["update_single_of_many"]
    assert refused["status"] == 406, refused
    names = _ok(js_results, "after_update_single_of_many")
    assert names == [{"name": "Js 21"}, {"name": "Js 22"}]
    assert _ok(js_results, "update") == [{"id": 20, "name": "Js 20"}]
    assert _ids(_ok(js_results, "delete")) == [20, 21, 22, 23]


def test_postgrest_js_calls_a_function(
    js_results: dict[str, dict[str, Any]],
) -> None:
    assert _ok(js_results, "rpc") == 42


def test_postgrest_js_reports_gateway_errors(
    js_results: dict[str, dict[str, Any]],
) -> None:
    missing = js_results["missing_table"]
    assert missing["status"] == 404
    assert missing["error"]["code"] == "PGF404"
