"""The lab tests' per-platform labs, made side by side, with stand-in labs."""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import pytest

from pgfortress import lab as lab_package
from pgfortress.errors import LabError
from tests.lab._platform_labs import platform_lab

NAMES = {"debian12": "xpg", "debian13": "xpg13"}


@dataclass
class FakeLabs:
    """labs.up and labs.down that only record what they were asked."""

    events: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_down: set[str] = field(default_factory=set)

    def up(self, name: str, hosts: list[str], *, platform: str) -> Any:
        with self.lock:
            self.events.append(f"up {name} {platform} {len(hosts)}")
        return name

    def down(self, name: str) -> None:
        with self.lock:
            self.events.append(f"down {name}")
        if name in self.fail_down:
            raise LabError(f"lab {name} is not fully down")

    def count(self, prefix: str) -> int:
        return sum(1 for event in self.events if event.startswith(prefix))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLabs:
    labs = FakeLabs()
    monkeypatch.setattr(lab_package, "up", labs.up)
    monkeypatch.setattr(lab_package, "down", labs.down)
    return labs


class Module:
    """What platform_lab uses of a module node."""

    def __init__(self) -> None:
        self.finalizers: list[Any] = []

    def addfinalizer(self, finalizer: Any) -> None:
        self.finalizers.append(finalizer)

    def finish(self) -> None:
        for finalizer in reversed(self.finalizers):
            finalizer()


@dataclass
class Item:
    module: Module
    platform: str

    @property
    def callspec(self) -> Any:
        return type("CallSpec", (), {"params": {"lab": self.platform}})()

    def getparent(self, kind: type) -> Module:
        assert kind is pytest.Module
        return self.module


def request_for(module: Module, platform: str, selected: list[str]) -> Any:
    session = type("Session", (), {"items": [Item(module, p) for p in selected]})()
    return type(
        "Request",
        (),
        {"param": platform, "node": module, "session": session, "fixturename": "lab"},
    )()


def fixture(
    module: Module, platform: str, selected: list[str], hosts: list[str], prepare: Any
) -> Generator[Any, None, None]:
    return platform_lab(request_for(module, platform, selected), NAMES, hosts, prepare)


def test_small_labs_are_made_side_by_side_and_go_down_in_the_background(
    fake: FakeLabs,
) -> None:
    module, both = Module(), list(NAMES)
    first = fixture(module, "debian12", both, ["db1"], lambda state: f"{state} made")
    assert next(first) == "xpg made"
    # The Debian 13 lab was started when the first one was.
    second = fixture(module, "debian13", both, ["db1"], lambda state: f"{state} made")
    first.close()
    assert next(second) == "xpg13 made"
    second.close()
    module.finish()
    assert sorted(fake.events) == [
        "down xpg",
        "down xpg13",
        "up xpg debian12 1",
        "up xpg13 debian13 1",
    ]


def test_labs_too_large_to_run_together_are_made_one_after_the_other(
    fake: FakeLabs,
) -> None:
    module, both, hosts = Module(), list(NAMES), ["db1", "gw1", "client1", "cache1"]
    first = fixture(module, "debian12", both, hosts, lambda state: state)
    assert next(first) == "xpg"
    assert fake.events == ["up xpg debian12 4"]
    first.close()
    assert fake.events == ["up xpg debian12 4", "down xpg"]
    second = fixture(module, "debian13", both, hosts, lambda state: state)
    assert next(second) == "xpg13"
    second.close()
    module.finish()
    assert fake.events[2:] == ["up xpg13 debian13 4", "down xpg13"]


def test_only_the_selected_platforms_get_a_lab(fake: FakeLabs) -> None:
    module = Module()
    only = fixture(module, "debian13", ["debian13"], ["db1"], lambda state: state)
    assert next(only) == "xpg13"
    only.close()
    module.finish()
    assert fake.events == ["up xpg13 debian13 1", "down xpg13"]


def test_a_lab_made_ahead_whose_tests_never_run_is_taken_down(fake: FakeLabs) -> None:
    module = Module()
    first = fixture(module, "debian12", list(NAMES), ["db1"], lambda state: state)
    next(first)
    first.close()
    module.finish()
    assert fake.count("up ") == 2
    assert sorted(e for e in fake.events if e.startswith("down")) == [
        "down xpg",
        "down xpg13",
    ]


def test_a_deploy_that_fails_ahead_fails_its_platform_and_takes_its_lab_down(
    fake: FakeLabs,
) -> None:
    def prepare(state: str) -> str:
        assert state != "xpg13", "the Debian 13 deploy failed"
        return state

    module = Module()
    first = fixture(module, "debian12", list(NAMES), ["db1"], prepare)
    next(first)
    second = fixture(module, "debian13", list(NAMES), ["db1"], prepare)
    with pytest.raises(AssertionError, match="the Debian 13 deploy failed"):
        next(second)
    first.close()
    module.finish()
    assert fake.count("down xpg13") == 1
    assert fake.count("down xpg") == 2


def test_a_teardown_that_fails_in_the_background_fails_the_module_end(
    fake: FakeLabs,
) -> None:
    fake.fail_down.add("xpg")
    module = Module()
    only = fixture(module, "debian12", ["debian12"], ["db1"], lambda state: state)
    next(only)
    only.close()
    with pytest.raises(LabError, match="lab xpg is not fully down"):
        module.finish()
