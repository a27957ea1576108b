"""Bringing labs up and taking them down.

``up`` is idempotent: a healthy lab with the same hosts is left as it is, and
anything an earlier, interrupted run left behind is cleaned before the lab is
rebuilt. ``down`` removes every process, namespace, link, mount and file the
lab made, and checks that nothing is left.
"""

from __future__ import annotations

import fcntl
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from pgfortress._logging import logger
from pgfortress.errors import LabError

from . import (
    aptproxy,
    hostfiles,
    inotify,
    machine,
    network,
    procs,
    rootfs,
    sources,
    ssh,
)
from ._system import remove_tree, require_tools
from .addressing import allocate
from .health import problems as health_problems
from .health import remnants
from .hostroot import HostFiles, prepare_root
from .names import DEFAULT_HOSTS, check_host_names, check_lab_name
from .paths import LabLayout, cache_root, lab_dir, labs_root
from .platforms import DEFAULT_PLATFORM, Platform, platform_named
from .progress import Progress
from .state import LabHost, LabState, find_state, list_labs, plan_state, write_state

__all__ = ["down", "up"]

BOOT_TIMEOUT = 120.0
# Two cores: more parallel unpacking or booting only adds contention.
_WORKERS = 4

T = TypeVar("T")


def up(
    name: str,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    progress: Progress | None = None,
    *,
    platform: str = DEFAULT_PLATFORM,
    images: Mapping[str, Path] | None = None,
) -> LabState:
    """Bring lab ``name`` up with ``hosts`` and return its state.

    Every host runs ``platform`` (a name in ``pgfortress.lab.platforms``);
    a host named in ``images`` boots from that root filesystem tarball
    instead of the platform's fresh one, and gets the same per-host files.
    """
    name, wanted = check_lab_name(name), check_host_names(hosts)
    chosen = platform_named(platform)
    booted_from = _check_images(images or {}, wanted)
    progress = progress or Progress()
    require_tools()
    with _lab_lock(name, progress):
        found = find_state(name)
        if found is not None and found[0] == "ready":
            state = found[1]
            problems = health_problems(state)
            same = (tuple(state.hosts), state.platform, state.images) == (
                wanted,
                chosen.name,
                booted_from,
            )
            if not problems and same:
                progress.say(f"lab {name} is already up and healthy; nothing changed")
                return state
            if not problems:
                raise LabError(
                    f"lab {name} is up with hosts {','.join(state.hosts)} on "
                    f"{state.platform}{_images_text(state.images)}, not "
                    f"{','.join(wanted)} on {chosen.name}"
                    f"{_images_text(booted_from)}: run `pgfortress lab down "
                    f"--name {name}` first"
                )
            progress.say(f"lab {name} is unhealthy: {'; '.join(problems)}")
        if lab_dir(name).exists():
            with progress.step(f"cleaning up what an earlier run of {name} left"):
                _teardown(name, found[1] if found else None, progress)
        return _build(name, wanted, chosen, booted_from, progress)


def _check_images(images: Mapping[str, Path], hosts: tuple[str, ...]) -> dict[str, str]:
    """Image tarballs by host, as absolute paths; LabError naming the fix."""
    checked = {}
    for host, path in images.items():
        if host not in hosts:
            raise LabError(
                f"image given for {host}, which is not one of the lab's hosts "
                f"({','.join(hosts)}): name the host in --hosts or drop --image"
            )
        if not Path(path).is_file():
            raise LabError(
                f"image for {host}: {path} is not a file: give the root "
                "filesystem tarball (.tar.zst) that `pgfortress image build` wrote"
            )
        checked[host] = str(Path(path).resolve())
    return checked


def _images_text(images: Mapping[str, str]) -> str:
    if not images:
        return ""
    return " (images: " + ", ".join(f"{h}={p}" for h, p in images.items()) + ")"


def down(name: str, progress: Progress | None = None) -> None:
    """Take lab ``name`` down completely; a missing lab is not an error."""
    name = check_lab_name(name)
    progress = progress or Progress()
    require_tools()
    with _lab_lock(name, progress):
        if not lab_dir(name).exists():
            progress.say(f"there is no lab named {name}; nothing to take down")
            return
        found = find_state(name)
        with progress.step(f"taking down lab {name}"):
            _teardown(name, found[1] if found else None, progress)


def _build(
    name: str,
    hosts: tuple[str, ...],
    platform: Platform,
    images: dict[str, str],
    progress: Progress,
) -> LabState:
    problem = inotify.room_problem(
        len(hosts), inotify.limit(), inotify.instances_in_use()
    )
    if problem is not None:
        raise LabError(f"lab {name}: {problem}")
    entries = sources.sources_for_suite(sources.read_machine_sources(), platform.suite)
    mirror = sources.archive_mirror(entries, platform.suite)
    roots = {host: Path(path) for host, path in images.items()}
    if len(roots) < len(hosts):
        fresh = rootfs.ensure_tarball(cache_root(), mirror, platform, progress)
        roots = {host: roots.get(host, fresh) for host in hosts}
    state = _claim(name, hosts, platform.name, images)
    progress.say(
        f"lab {name} ({platform.name}): {state.subnet} and {state.subnet6} on bridge "
        f"{state.bridge}, hosts "
        f"{', '.join(f'{h.name}={h.address}' for h in state.hosts.values())}"
        f"{_images_text(images)}"
    )
    try:
        _bring_up(state, entries, roots, progress)
    except BaseException:
        progress.say(f"bringing lab {name} up failed; removing what was made")
        try:
            _teardown(name, state, progress)
        except LabError as error:
            logger.error("cleanup after failed up left something: %s", error)
        raise
    write_state(state, "ready")
    progress.say(f"lab {name} is up; try `ssh -F {state.ssh_config} <host>`")
    return state


def _claim(
    name: str, hosts: tuple[str, ...], platform: str, images: dict[str, str]
) -> LabState:
    """Choose the lab's network and record it before anything is created.

    Runs under a lock shared by all labs, so two concurrent ``up`` calls never
    pick the same slot.
    """
    root = labs_root()
    root.mkdir(parents=True, exist_ok=True)
    with _flock(root / ".allocate.lock"):
        taken = [state.slot for other, state in _all_states() if other != name]
        allocation = allocate(name, taken, network.machine_routes())
        layout = LabLayout(lab_dir(name))
        layout.dir.mkdir(mode=0o700)
        layout.dir.chmod(0o700)
        state = plan_state(name, hosts, allocation, layout, platform, images)
        write_state(state, "building")
    return state


def _bring_up(
    state: LabState,
    entries: list[sources.AptSource],
    roots: Mapping[str, Path],
    progress: Progress,
) -> None:
    layout = LabLayout(state.dir)
    hosts = list(state.hosts.values())
    with progress.step("creating the lab SSH key"):
        lab_key = ssh.create_lab_key(layout, state.name)
    with progress.step(f"creating bridge {state.bridge}"):
        network.create_bridge(state)
    with progress.step(f"starting apt proxy on {state.gateway}:{aptproxy.PORT}"):
        paths = aptproxy.ProxyPaths(layout.acng_dir, cache_root() / "apt" / state.name)
        aptproxy.start(paths, layout.run_dir, state.gateway, entries)

    shared = HostFiles(
        etc_hosts=hostfiles.render_etc_hosts(
            (state.gateway, state.gateway6),
            {h.name: (h.address, h.address6) for h in hosts},
        ),
        sources_list=sources.render_sources_list(entries),
        apt_proxy=hostfiles.render_apt_proxy(state.apt_proxy),
        authorized_key=f"{lab_key} pgfortress-lab-{state.name}\n",
    )

    def make_root(host: LabHost) -> str:
        rootfs.extract(roots[host.name], layout.host_root(host.name))
        return prepare_root(layout.host_root(host.name), host.name, shared)

    with progress.step(f"unpacking and configuring {len(hosts)} host roots"):
        keys = _in_parallel(make_root, hosts)
    _write_ssh_files(state, keys)

    with progress.step("creating network namespaces and links"):
        for host in hosts:
            network.add_host_link(state, host)
    with progress.step(f"booting {len(hosts)} hosts"):
        nspawns = [machine.boot(layout, host) for host in hosts]
        for host, nspawn in zip(hosts, nspawns, strict=True):
            machine.record_init(layout, host, nspawn, timeout=30)
    with progress.step("waiting for SSH logins on every host"):
        _in_parallel(lambda host: _wait_for_host(state, host), hosts)


def _write_ssh_files(state: LabState, keys: list[str]) -> None:
    pairs = {h.name: (h.address, h.address6) for h in state.hosts.values()}
    known = {
        name: (pair, key) for (name, pair), key in zip(pairs.items(), keys, strict=True)
    }
    state.known_hosts.write_text(hostfiles.render_known_hosts(known))
    state.ssh_config.write_text(
        hostfiles.render_ssh_config(pairs, state.ssh_key, state.known_hosts)
    )


def _wait_for_host(state: LabState, host: LabHost) -> None:
    try:
        ssh.wait_for_login(state, host.name, BOOT_TIMEOUT)
    except LabError as error:
        layout = LabLayout(state.dir)
        raise LabError(
            f"host {host.name} ({host.address}) is not reachable over SSH: {error}\n"
            f"last lines of {layout.host_log(host.name)}:\n"
            f"{machine.log_tail(layout, host)}"
        ) from error


def _teardown(name: str, state: LabState | None, progress: Progress) -> None:
    layout = LabLayout(lab_dir(name))
    hosts = list(state.hosts.values()) if state else []
    if state is None and procs.read_records(layout.run_dir):
        logger.warning("lab %s has no readable lab.json; only its processes go", name)
    with progress.step("  stopping hosts"):
        machine.stop(layout)
    with progress.step("  stopping apt proxy"):
        records = procs.read_records(layout.run_dir)
        proxy = [records["apt-proxy"]] if "apt-proxy" in records else []
        if procs.stop(proxy, signal.SIGTERM, timeout=10):
            procs.kill(proxy)
    failures: list[str] = []
    with progress.step("  removing namespaces, links and host roots"):
        # Keep going past a failure: a half-removed lab is worse than a
        # complete attempt that reports what resisted.
        for host in hosts:
            for cleanup in (network.delete_host_link, _cleanup_host(layout)):
                try:
                    cleanup(host)
                except LabError as error:
                    failures.append(str(error))
        if state is not None:
            try:
                network.delete_bridge(state)
            except LabError as error:
                failures.append(str(error))
        if not failures:
            remove_tree(layout.dir)
    left = remnants(state) if state else []
    if left or failures:
        raise LabError(
            f"lab {name} is not fully down; still there: {', '.join(left) or '-'}"
            + "".join(f"\n  {failure}" for failure in failures)
            + f"\nrun `pgfortress lab down --name {name}` again"
        )


def _cleanup_host(layout: LabLayout) -> Callable[[LabHost], None]:
    return lambda host: machine.cleanup_host(layout, host)


def _all_states() -> Iterator[tuple[str, LabState]]:
    for other in list_labs():
        found = find_state(other)
        if found is not None:
            yield other, found[1]


def _in_parallel(work: Callable[[LabHost], T], hosts: list[LabHost]) -> list[T]:
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(hosts))) as pool:
        return list(pool.map(work, hosts))


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def _lab_lock(name: str, progress: Progress) -> Iterator[None]:
    """Serialise ``up`` and ``down`` of one lab across processes."""
    root = labs_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{name}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.say(f"waiting for another pgfortress run on lab {name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
