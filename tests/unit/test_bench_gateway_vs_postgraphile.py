"""The PostGraphile benchmark's pure parts: SQL, wrk scripts, answers, table."""

from __future__ import annotations

import json
from typing import Any

from bench.gateway_vs_postgraphile import (
    CONCURRENCIES,
    QUERIES,
    SIDES,
    _rows,
    section,
    summarise_cell,
    transaction_script,
    wrk_script,
)


def test_pgbench_runs_the_gateways_transaction_for_each_request() -> None:
    one, hundred = (transaction_script(query) for query in QUERIES)
    for script in (one, hundred):
        lines = script.splitlines()
        assert lines[0] == "BEGIN;"
        assert lines[1] == 'SET LOCAL ROLE "web_user";'
        assert "request.jwt.claims" in lines[2]
        assert lines[-1] == "COMMIT;"
    assert '"api"."customers"' in one
    assert "= '1'::integer LIMIT 1000" in one
    assert '"api"."orders"' in hundred
    assert 'ORDER BY "pgf_0"."id" ASC LIMIT 100' in hundred


def test_wrk_scripts_split_the_tokens_between_threads() -> None:
    tokens = [f"t{n}" for n in range(8)]
    graphql = wrk_script(tokens, 2, "postgraphile", QUERIES[0])
    assert "local per_thread = 4" in graphql
    assert 'local method, body = "POST", "{\\"query\\": ' in graphql
    assert "customerById(id: 1)" in graphql
    rest = wrk_script(tokens, 1, "gateway", QUERIES[1])
    assert "local per_thread = 8" in rest
    assert 'local method, body = "GET", nil' in rest


def test_rows_are_counted_the_way_each_side_answers() -> None:
    assert _rows([{"id": 1}], "gateway") == 1
    assert _rows({"data": {"customerById": {"id": 1}}}, "postgraphile") == 1
    nodes = {"data": {"allOrders": {"nodes": [{"id": n} for n in range(100)]}}}
    assert _rows(nodes, "postgraphile") == 100
    assert _rows({"errors": [{"message": "no"}], "data": None}, "postgraphile") == -1


def _run(rate: float, failures: int = 0) -> dict[str, Any]:
    return {
        "requests_per_s": rate,
        "p50_ms": 2.0,
        "p99_ms": 9.0,
        "requests": int(rate * 15),
        "failures": failures,
        "cpu_cores": 0.5,
        "rss_mib": 80.0,
    }


def test_cells_give_ratios_and_the_section_shows_every_cell() -> None:
    cells = [
        summarise_cell(
            query,
            concurrency,
            {
                "pgbench": [_run(4000.0), _run(5000.0)],
                "gateway": [_run(1000.0), _run(1200.0, failures=3)],
                "postgraphile": [_run(400.0), _run(600.0)],
            },
        )
        for query in QUERIES
        for concurrency in CONCURRENCIES
    ]
    first = cells[0]
    assert first["gateway"]["failures"] == 3
    assert first["gateway_to_pgbench"] == round(
        first["gateway"]["requests_per_s"] / first["pgbench"]["requests_per_s"], 3
    )
    assert first["gateway_to_postgraphile"] == round(
        first["gateway"]["requests_per_s"] / first["postgraphile"]["requests_per_s"],
        2,
    )
    environment = {
        "command": "sudo .venv/bin/python -m bench.gateway_vs_postgraphile",
        "date": "2026-12-05T00:00:00+00:00",
        "commit": "abc",
        "machine": "x86_64, 2 cores",
        "postgraphile": "4.14.0",
        "rounds": 2,
        "seconds_per_run": 15,
        "pgbench_max_clients": 64,
        "queries": {
            q.key: {"gateway": f"GET {q.path}", "graphql": q.graphql} for q in QUERIES
        },
    }
    text = section({"environment": environment, "cells": cells})
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(QUERIES) * len(CONCURRENCIES)
    assert "(failed: gateway 3, PostGraphile 0)" in text
    # 0.5 of a core for 1100 (gateway) and 500 (PostGraphile) requests/s.
    assert "| 455 / 1000 |" in text
    at32 = next(c for c in cells if c["concurrency"] == 32)
    assert f"gateway ÷ pgbench\n{at32['gateway_to_pgbench']:.2f}" in text
    assert f"{at32['gateway_to_postgraphile']:.2f}** (issue 7's targets" in text
    assert SIDES == ("pgbench", "gateway", "postgraphile")
    assert json.loads(json.dumps(cells)) == cells
