"""The OpenAPI document, and the gateway standing alone from the provisioning side."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pgfortress_gateway.openapi import openapi_document

from .test_grammar import make_cache

PACKAGE = Path(__file__).resolve().parents[2] / "gateway" / "pgfortress_gateway"


def test_every_relation_and_function_has_a_path() -> None:
    cache = make_cache()
    document = openapi_document(cache)
    assert document["openapi"].startswith("3.")
    for name in cache.relations:
        assert f"/{name}" in document["paths"]
    for name in cache.functions:
        assert "post" in document["paths"][f"/rpc/{name}"]


def test_only_stable_and_immutable_functions_are_offered_to_get() -> None:
    cache = make_cache()
    paths = openapi_document(cache)["paths"]
    for name, function in cache.functions.items():
        assert ("get" in paths[f"/rpc/{name}"]) is (function.volatility != "volatile")
    (argument,) = paths["/rpc/lookup"]["get"]["parameters"]
    assert (argument["name"], argument["in"], argument["required"]) == (
        "meta",
        "query",
        True,
    )


def test_views_are_read_only_in_the_description() -> None:
    cache = make_cache()
    document = openapi_document(cache)
    for name, relation in cache.relations.items():
        methods = set(document["paths"][f"/{name}"])
        if relation.kind == "view":
            assert methods == {"get"}
        else:
            assert methods == {"get", "post", "patch", "delete"}


def test_the_gateway_imports_nothing_from_the_provisioning_side() -> None:
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text()
        assert "import pgfortress\n" not in text, source
        assert "from pgfortress " not in text, source
        assert "from pgfortress." not in text, source
    code = (
        "import sys, pgfortress_gateway.app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pgfortress', 'pyinfra'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
