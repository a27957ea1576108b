"""``pgfortress lab`` argument handling, without touching any lab."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pytest

from pgfortress.errors import LabError
from pgfortress.lab import cli, lifecycle, state


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_lab_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["lab", "up"], "demo"),
        (["lab", "status", "--name", "x1"], "x1"),
        (["lab", "down", "--name", "x2"], "x2"),
    ],
)
def test_commands_default_to_the_demo_lab(argv: list[str], name: str) -> None:
    assert _parse(argv).name == name


def test_up_defaults_to_three_hosts() -> None:
    assert _parse(["lab", "up"]).hosts == "db1,gw1,client1"


def test_lab_needs_a_subcommand() -> None:
    with pytest.raises(SystemExit):
        _parse(["lab"])


def test_up_splits_the_host_list(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Sequence[str], str, dict[str, Path]]] = []
    monkeypatch.setattr(
        lifecycle,
        "up",
        lambda name, hosts, platform, images: calls.append(
            (name, hosts, platform, images)
        ),
    )
    assert cli.main(["lab", "up", "--name", "x", "--hosts", "db1, gw1,"]) == 0
    assert calls == [("x", ["db1", "gw1"], "debian12", {})]


def test_up_takes_a_platform_and_images(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Path]]] = []
    monkeypatch.setattr(
        lifecycle,
        "up",
        lambda name, hosts, platform, images: calls.append((platform, images)),
    )
    argv = ["lab", "up", "--platform", "debian13", "--image", "db1=/i/db.tar.zst"]
    assert cli.main(argv) == 0
    assert calls == [("debian13", {"db1": Path("/i/db.tar.zst")})]


def test_an_unknown_platform_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _parse(["lab", "up", "--platform", "debian11"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["db1"], "write it as HOST=TARBALL"),
        (["=/x.tar.zst"], "write it as HOST=TARBALL"),
        (["db1="], "write it as HOST=TARBALL"),
        (["db1=/a", "db1=/b"], "names db1 twice"),
    ],
)
def test_malformed_image_options_name_the_fix(options: list[str], message: str) -> None:
    with pytest.raises(LabError, match=message):
        cli.parse_images(options)


def test_lab_errors_become_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(name: str) -> None:
        raise LabError(f"no lab named {name}")

    monkeypatch.setattr(lifecycle, "down", fail)
    assert cli.main(["lab", "down", "--name", "x"]) == 1
    assert "error: no lab named x" in capsys.readouterr().err


def test_list_without_labs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(state, "list_labs", list)
    assert cli.main(["lab", "list"]) == 0
    assert "no labs" in capsys.readouterr().out
