"""Reading the machine's apt sources and keeping the Debian archive entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgfortress.errors import LabError
from pgfortress.lab.sources import (
    AptSource,
    archive_mirror,
    debian_sources,
    parse_deb822,
    parse_one_line,
    read_machine_sources,
    render_sources_list,
    sources_for_suite,
)

# Names under .example never resolve; no real mirror is named in the repository.
MIRROR = "http://mirror.example/debian"
SECURITY = "http://mirror.example/debian-security"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f"deb {MIRROR} bookworm main contrib",
            [AptSource("deb", MIRROR, "bookworm", ("main", "contrib"))],
        ),
        (
            f"deb [ arch=amd64 signed-by=/k.gpg ] {MIRROR} bookworm main",
            [AptSource("deb", MIRROR, "bookworm", ("main",))],
        ),
        (
            f"deb [arch=amd64] {MIRROR} bookworm-updates main # trailing note",
            [AptSource("deb", MIRROR, "bookworm-updates", ("main",))],
        ),
        (
            f"deb-src {MIRROR} bookworm main",
            [AptSource("deb-src", MIRROR, "bookworm", ("main",))],
        ),
        (f"# deb {MIRROR} bookworm main", []),
        ("", []),
        ("deb", []),
    ],
)
def test_one_line_format(line: str, expected: list[AptSource]) -> None:
    assert parse_one_line(line) == expected


DEB822 = f"""\
Types: deb deb-src
# a comment inside the stanza
URIs: {MIRROR}
Suites: bookworm
 bookworm-updates
Components: main

Types: deb
URIs: {SECURITY}
Suites: bookworm-security
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Enabled: no
Types: deb
URIs: http://other.example/debian
Suites: bookworm
Components: main
"""


def test_deb822_expands_every_combination_and_skips_disabled() -> None:
    assert parse_deb822(DEB822) == [
        AptSource("deb", MIRROR, "bookworm", ("main",)),
        AptSource("deb", MIRROR, "bookworm-updates", ("main",)),
        AptSource("deb-src", MIRROR, "bookworm", ("main",)),
        AptSource("deb-src", MIRROR, "bookworm-updates", ("main",)),
        AptSource("deb", SECURITY, "bookworm-security", ("main", "non-free-firmware")),
    ]


@pytest.mark.parametrize(
    ("entry", "kept"),
    [
        pytest.param(AptSource("deb", MIRROR, "bookworm", ("main",)), True, id="main"),
        pytest.param(
            AptSource("deb", MIRROR + "/", "bookworm-updates", ("main", "contrib")),
            True,
            id="updates-trailing-slash",
        ),
        pytest.param(
            AptSource("deb", SECURITY, "bookworm-security", ("main",)),
            True,
            id="security",
        ),
        pytest.param(
            AptSource("deb-src", MIRROR, "bookworm", ("main",)), False, id="source-only"
        ),
        pytest.param(
            AptSource("deb", MIRROR, "trixie", ("main",)), False, id="other-suite"
        ),
        pytest.param(
            AptSource("deb", MIRROR, "bookworm-backports", ("main",)),
            False,
            id="backports",
        ),
        pytest.param(
            AptSource("deb", MIRROR, "bookworm-security", ("main",)),
            False,
            id="security-suite-on-archive-uri",
        ),
        pytest.param(
            AptSource("deb", "http://repo.example/apt", "bookworm", ("main",)),
            False,
            id="third-party",
        ),
        pytest.param(
            AptSource("deb", MIRROR, "bookworm", ("contrib",)), False, id="no-main"
        ),
        pytest.param(
            AptSource("deb", "file:/srv/debian", "bookworm", ("main",)),
            False,
            id="file",
        ),
    ],
)
def test_only_debian_archive_entries_of_the_suite_family_are_kept(
    entry: AptSource, kept: bool
) -> None:
    assert bool(debian_sources([entry], "bookworm")) is kept


def test_kept_entries_are_plain_http_main_only_and_deduplicated() -> None:
    entries = [
        AptSource(
            "deb", "https://mirror.example/debian/", "bookworm", ("main", "contrib")
        ),
        AptSource("deb", MIRROR, "bookworm", ("main",)),
    ]
    assert debian_sources(entries, "bookworm") == [
        AptSource("deb", MIRROR, "bookworm", ("main",))
    ]


def test_archive_mirror_is_the_plain_suite_entry() -> None:
    entries = debian_sources(parse_deb822(DEB822), "bookworm")
    assert archive_mirror(entries, "bookworm") == MIRROR


def test_missing_archive_entry_says_what_to_add() -> None:
    with pytest.raises(LabError, match="deb http://<mirror>/debian bookworm main"):
        archive_mirror([], "bookworm")


def test_another_release_uses_the_machine_mirrors_under_its_own_suites() -> None:
    entries = sources_for_suite(parse_deb822(DEB822), "trixie")
    assert entries == [
        AptSource("deb", e.uri, e.suite.replace("bookworm", "trixie"), ("main",))
        for e in debian_sources(parse_deb822(DEB822), "bookworm")
    ]
    assert {e.suite for e in entries} == {
        "trixie",
        "trixie-updates",
        "trixie-security",
    }
    assert archive_mirror(entries, "trixie") == MIRROR


def test_the_machine_own_entries_for_a_release_win() -> None:
    entries = [
        AptSource("deb", MIRROR, "bookworm", ("main",)),
        AptSource("deb", "http://other.example/debian", "trixie", ("main",)),
    ]
    assert sources_for_suite(entries, "trixie") == [entries[1]]
    assert sources_for_suite(entries, "bookworm") == [entries[0]]


def test_no_debian_release_at_all_gives_nothing_to_build_from() -> None:
    assert sources_for_suite([], "trixie") == []
    with pytest.raises(LabError, match="deb http://<mirror>/debian trixie main"):
        archive_mirror(sources_for_suite([], "trixie"), "trixie")


def test_rendered_sources_list() -> None:
    entries = debian_sources(parse_deb822(DEB822), "bookworm")
    assert render_sources_list(entries).splitlines()[1:] == [
        f"deb {MIRROR} bookworm main",
        f"deb {MIRROR} bookworm-updates main",
        f"deb {SECURITY} bookworm-security main",
    ]


def test_machine_sources_read_all_three_places(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(f"deb {MIRROR} bookworm main\n")
    (tmp_path / "sources.list.d/extra.list").write_text(
        f"deb {MIRROR} bookworm-updates main\n"
    )
    (tmp_path / "sources.list.d/debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d/old.list.disabled").write_text(
        "deb http://old.example/debian bookworm main\n"
    )
    entries = read_machine_sources(tmp_path)
    assert {e.uri for e in entries} == {MIRROR, SECURITY}
    assert len(entries) == 7


def test_machine_without_sources_has_none(tmp_path: Path) -> None:
    assert read_machine_sources(tmp_path) == []
