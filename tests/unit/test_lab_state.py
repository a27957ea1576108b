"""The lab state: planned from an allocation, persisted and loaded as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgfortress.errors import LabError
from pgfortress.lab import lab_dir, load
from pgfortress.lab.addressing import Allocation
from pgfortress.lab.paths import LabLayout, cache_root, labs_root
from pgfortress.lab.state import (
    LabHost,
    LabState,
    Phase,
    from_json,
    plan_state,
    read_state,
    to_json,
    write_state,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PGFORTRESS_HOME", str(tmp_path))
    return tmp_path


def _state(name: str = "demo") -> LabState:
    layout = LabLayout(lab_dir(name))
    return plan_state(name, ("db1", "client1"), Allocation(7), layout)


def test_plan_names_every_address_and_kernel_object(home: Path) -> None:
    state = _state()
    assert state.dir == home / "labs" / "demo"
    assert (state.subnet, state.subnet6) == ("10.213.7.0/24", "fd70:6766:213:7::/64")
    assert (state.gateway, state.gateway6) == ("10.213.7.1", "fd70:6766:213:7::1")
    assert state.bridge == "pgfb7"
    assert state.apt_proxy == "http://10.213.7.1:3142"
    assert state.ssh_key == state.dir / "id_ed25519"
    assert state.hosts["client1"] == LabHost(
        name="client1",
        address="10.213.7.11",
        address6="fd70:6766:213:7::11",
        groups=("client",),
        machine="pgf-demo-client1",
        netns="pgf-demo-client1",
        veth="pgf7h1",
    )
    assert list(state.hosts) == ["db1", "client1"]


@pytest.mark.parametrize(
    ("command", "remote"),
    [
        ((), []),
        (("systemctl", "is-system-running"), ["systemctl is-system-running"]),
        (("python3", "-c", "print('a b')"), ["python3 -c 'print('\"'\"'a b'\"'\"')'"]),
    ],
)
def test_ssh_argv_uses_the_lab_config_and_quotes_the_command(
    home: Path, command: tuple[str, ...], remote: list[str]
) -> None:
    state = _state()
    config = str(state.ssh_config)
    assert state.ssh_argv("db1", *command) == [
        "ssh",
        "-F",
        config,
        "db1",
        "--",
        *remote,
    ]


@pytest.mark.parametrize("phase", ["building", "ready"])
def test_json_round_trip_keeps_everything(home: Path, phase: Phase) -> None:
    state = _state()
    assert from_json(to_json(state, phase)) == (phase, state)


def test_json_round_trip_keeps_platform_and_images(home: Path) -> None:
    layout = LabLayout(lab_dir("demo"))
    images = {"db1": "/images/db.tar.zst"}
    state = plan_state("demo", ("db1",), Allocation(7), layout, "debian13", images)
    assert from_json(to_json(state, "ready")) == ("ready", state)
    assert (state.platform, state.images) == ("debian13", images)


def test_a_lab_json_from_before_platforms_reads_as_debian12(home: Path) -> None:
    document = json.loads(to_json(_state(), "ready"))
    del document["platform"], document["images"]
    _, state = from_json(json.dumps(document))
    assert (state.platform, state.images) == ("debian12", {})


def test_load_returns_a_ready_lab(home: Path) -> None:
    state = _state()
    state.dir.mkdir(parents=True)
    write_state(state, "ready")
    assert load("demo") == state


def test_load_of_missing_lab_names_the_fix(home: Path) -> None:
    with pytest.raises(LabError, match="run `pgfortress lab up --name nolab`"):
        load("nolab")


def test_load_of_half_built_lab_names_the_fix(home: Path) -> None:
    state = _state()
    state.dir.mkdir(parents=True)
    write_state(state, "building")
    with pytest.raises(LabError, match="interrupted"):
        load("demo")


@pytest.mark.parametrize("text", ["not json", "{}", '{"format": 99}'])
def test_unreadable_state_names_the_fix(home: Path, text: str) -> None:
    path = LabLayout(lab_dir("demo")).state_file
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(LabError, match="lab down --name demo"):
        read_state("demo")


def test_invalid_name_is_refused_before_touching_files(home: Path) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        load("../etc")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PGFORTRESS_HOME", "", Path("/var/lib/pgfortress/labs")),
        ("PGFORTRESS_HOME", "/srv/pgf", Path("/srv/pgf/labs")),
    ],
)
def test_labs_root_follows_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: Path
) -> None:
    monkeypatch.setenv(variable, value)
    assert labs_root() == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", Path("/var/cache/pgfortress")), ("/srv/cache", Path("/srv/cache"))],
)
def test_cache_root_follows_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: Path
) -> None:
    monkeypatch.setenv("PGFORTRESS_CACHE", value)
    assert cache_root() == expected
