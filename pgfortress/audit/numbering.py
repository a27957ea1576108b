"""Which CIS benchmark the ``cis:`` numbers come from, and hosts it was not written for.

The catalogue numbers its CIS controls after the CIS PostgreSQL 15 Benchmark.
CIS writes a benchmark per PostgreSQL major and renumbers some
recommendations between them, so an audit of a host running another major
(PostgreSQL 17 on Debian 13) says so, naming the hosts and their major: a
reader holding that major's benchmark matches its recommendations by title,
not by number. Each host's major comes from the host itself: the check of
``devsec:postgres-02`` reads ``server_version`` and records it as the test's
``postgres_major`` property.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CIS_BENCHMARK", "CIS_BENCHMARK_MAJOR", "MAJOR_PROPERTY", "numbering_note"]

CIS_BENCHMARK_MAJOR = 15
CIS_BENCHMARK = f"CIS PostgreSQL {CIS_BENCHMARK_MAJOR} Benchmark"
MAJOR_PROPERTY = "postgres_major"


def numbering_note(majors: Mapping[str, int]) -> str:
    """One line saying whose numbers the ``cis:`` ids are, for ``host → major``.

    Hosts on the benchmark's own major need nothing more; every other major
    gets a clause naming its hosts, sorted, so the line is stable.
    """
    line = f"cis: ids are numbered after the {CIS_BENCHMARK}"
    others: dict[int, list[str]] = {}
    for host, major in sorted(majors.items()):
        if major != CIS_BENCHMARK_MAJOR:
            others.setdefault(major, []).append(host)
    for major, hosts in sorted(others.items()):
        verb = "runs" if len(hosts) == 1 else "run"
        line += (
            f"; {', '.join(hosts)} {verb} PostgreSQL {major}, whose benchmark "
            f"(CIS PostgreSQL {major} Benchmark) numbers some of these "
            "recommendations differently: match them by title"
        )
    return line
