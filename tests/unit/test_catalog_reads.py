"""Several databases' catalogs in one psql process: the script and its variables."""

from __future__ import annotations

import pytest

from pgfortress.batch import BATCH_MARK
from pgfortress.catalog_reads import (
    QUERY_VARIABLE,
    catalogs_script,
    catalogs_variables,
    conninfo,
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("app", "dbname='app'"),
        ("a=b c", "dbname='a=b c'"),
        ("it's", "dbname='it\\'s'"),
        ("back\\slash", "dbname='back\\\\slash'"),
    ],
)
def test_a_database_name_is_always_read_as_a_name(name: str, text: str) -> None:
    assert conninfo(name) == text


def test_the_first_database_needs_no_variables() -> None:
    assert catalogs_variables(["postgres", "app"]) == {
        "pgf_name_1": "app",
        "pgf_conn_1": "dbname='app'",
    }


def test_each_catalog_comes_under_its_marker_and_only_if_the_database_exists() -> None:
    lines = catalogs_script(3).splitlines()
    marks = [line for line in lines if BATCH_MARK in line]
    assert marks == [f"\\echo '{BATCH_MARK}{n}'" for n in range(3)]
    assert lines.count(f":{QUERY_VARIABLE}") == 3
    # The marker comes before the check, so a missing database still has a
    # section, empty; the connection and the read only happen when it exists.
    second = lines.index(f"\\echo '{BATCH_MARK}1'")
    assert lines[second + 1 : second + 3] == [
        "\\if :pgf_exists",
        "\\c -reuse-previous=on :pgf_conn_1",
    ]
    assert lines.count("\\endif") == 2


def test_at_least_one_catalog_is_read() -> None:
    with pytest.raises(ValueError, match="at least one"):
        catalogs_script(0)
