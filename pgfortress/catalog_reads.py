"""The catalogs of several databases, read by one psql process.

Each psql process costs the host a fork, a login and a backend; with many
hosts on shared cores those add up. :func:`catalogs_script` is a psql script
that reads the first database's catalog over the connection psql opened,
then connects to each further database in turn (``\\c``) and reads its
catalog there. Each catalog comes under its own batch marker
(:data:`pgfortress.batch.BATCH_MARK`), so :func:`pgfortress.batch.split_batch`
gives one section per database. A database that does not exist (or takes no
connections) gets an empty section: psql checks ``pg_database`` before it
connects, so one missing database does not end the read of the next.

The catalog query itself travels once, in the psql variable
:data:`QUERY_VARIABLE`; the database names travel as psql variables too, so
no name is ever spliced into SQL or a meta-command.
"""

from __future__ import annotations

from collections.abc import Sequence

from .batch import BATCH_MARK

__all__ = ["QUERY_VARIABLE", "catalogs_script", "catalogs_variables", "conninfo"]

QUERY_VARIABLE = "pgf_catalog_query"


def conninfo(database: str) -> str:
    """A libpq connection string that names ``database`` and nothing else.

    psql's ``\\c`` takes a bare name containing ``=`` as a connection string:
    quoting every name this way reads any name as the name it is.
    """
    escaped = database.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}'"


def catalogs_variables(databases: Sequence[str]) -> dict[str, str]:
    """The psql variables :func:`catalogs_script` reads, after the query's:
    each further database's name (for SQL) and connection string (for ``\\c``).
    """
    variables: dict[str, str] = {}
    for number, name in enumerate(databases[1:], start=1):
        variables[f"pgf_name_{number}"] = name
        variables[f"pgf_conn_{number}"] = conninfo(name)
    return variables


def catalogs_script(count: int) -> str:
    """The psql script reading ``count`` catalogs, the first over the
    connection psql starts with; run with ``ON_ERROR_STOP`` so that a failed
    connection ends the script rather than reading another database again."""
    if count < 1:
        raise ValueError("read at least one database's catalog")
    lines = [f"\\echo '{BATCH_MARK}0'", f":{QUERY_VARIABLE}", ";"]
    for number in range(1, count):
        lines += [
            f"\\set pgf_name :pgf_name_{number}",
            _EXISTS,
            f"\\echo '{BATCH_MARK}{number}'",
            "\\if :pgf_exists",
            f"\\c -reuse-previous=on :pgf_conn_{number}",
            f":{QUERY_VARIABLE}",
            ";",
            "\\endif",
        ]
    return "\n".join(lines) + "\n"


# Whether the database named by pgf_name takes connections, into pgf_exists.
_EXISTS = (
    "SELECT EXISTS (SELECT FROM pg_database WHERE datname = :'pgf_name' "
    "AND datallowconn) AS pgf_exists \\gset"
)
