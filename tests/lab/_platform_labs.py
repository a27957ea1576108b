"""One lab per platform for a test module, made side by side.

A module whose lab fixture is parametrized over the platforms (Debian 12,
then Debian 13) needs each platform's lab brought up and deployed before its
tests, and taken down after. Done one after the other, the Debian 13 lab's
set-up adds minutes to the module, though most of it is spent waiting on
hosts (boots, apt, SSH). So :func:`platform_lab`, when the module's first
platform is set up, starts making the labs of the module's other selected
platforms in background threads at the same time, and takes each lab down in
a background thread once its tests are done.

Only modules whose labs together have at most :data:`MAX_HOSTS_AHEAD` hosts do
this; larger ones make and take down one lab at a time. When the module ends
it waits for every background step: a lab made whose tests never ran (the
session stopped early) is taken down, and a teardown that failed fails the
module's last test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

import pytest

from pgfortress import lab as labs
from pgfortress.lab import LabState

__all__ = ["MAX_HOSTS_AHEAD", "platform_lab"]

T = TypeVar("T")

# A module's labs up at once never have more hosts than this together.
MAX_HOSTS_AHEAD = 6
# Where a module node keeps the state of its labs.
_LABS = "_pgf_platform_labs"


class _Task(Generic[T]):
    """One step on a lab (making it, taking it down), here or in a thread."""

    def __init__(self, name: str, step: Callable[[], T]) -> None:
        self.name = name
        self.future: Future[T] = Future()
        self._step = step

    def run(self) -> None:
        try:
            self.future.set_result(self._step())
        except BaseException as error:  # handed to whoever waits for it
            self.future.set_exception(error)

    def start(self) -> None:
        threading.Thread(target=self.run, name=f"lab-{self.name}", daemon=True).start()


class _ModuleLabs(Generic[T]):
    """The labs of one module: those being made ahead, those going down."""

    def __init__(self) -> None:
        self.making: dict[str, _Task[T]] = {}
        self.downs: list[_Task[None]] = []

    def finish(self) -> None:
        """At the module's end: nothing of its labs is left, or it fails."""
        for making in self.making.values():
            try:
                making.future.result()
            except BaseException:  # noqa: S112 - it took its lab down itself
                continue
            labs.down(making.name)
        self.making.clear()
        downs, self.downs = self.downs, []
        for down in downs:
            down.future.result()


def _module_labs(request: pytest.FixtureRequest) -> _ModuleLabs[T]:
    module = request.node
    found: _ModuleLabs[T] | None = module.__dict__.get(_LABS)
    if found is None:
        found = _ModuleLabs()
        setattr(module, _LABS, found)
        module.addfinalizer(found.finish)
    return found


def _selected_platforms(request: pytest.FixtureRequest) -> list[str]:
    """The platforms this module's selected tests use, in the order they run."""
    found: list[str] = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if item.getparent(pytest.Module) is not request.node or callspec is None:
            continue
        platform = callspec.params.get(request.fixturename)
        if isinstance(platform, str) and platform not in found:
            found.append(platform)
    return found


def _making(
    name: str, hosts: Sequence[str], platform: str, prepare: Callable[[LabState], T]
) -> _Task[T]:
    def make() -> T:
        state = labs.up(name, list(hosts), platform=platform)
        try:
            return prepare(state)
        except BaseException:
            labs.down(name)
            raise

    return _Task(name, make)


def platform_lab(
    request: pytest.FixtureRequest,
    names: Mapping[str, str],
    hosts: Sequence[str],
    prepare: Callable[[LabState], T],
) -> Generator[T, None, None]:
    """The body of a module fixture with ``params=list(names)``.

    Yields ``prepare(state)`` for the lab of ``request.param`` (``names`` maps
    a platform to its lab's name), and takes that lab down after the
    platform's tests. ``prepare`` deploys, and asserts what it must.
    """
    platform, name = request.param, names[request.param]
    module: _ModuleLabs[T] = _module_labs(request)
    selected = _selected_platforms(request) or [platform]
    side_by_side = len(selected) * len(hosts) <= MAX_HOSTS_AHEAD
    making = module.making.pop(platform, None)
    if making is None:
        if side_by_side and platform in selected:
            for other in selected[selected.index(platform) + 1 :]:
                if other not in module.making:
                    ahead = _making(names[other], hosts, other, prepare)
                    module.making[other] = ahead
                    ahead.start()
        making = _making(name, hosts, platform, prepare)
        making.run()
    made = making.future.result()
    try:
        yield made
    finally:
        down = _Task(name, lambda: labs.down(name))
        if side_by_side:
            module.downs.append(down)
            down.start()
        else:
            down.run()
            down.future.result()
