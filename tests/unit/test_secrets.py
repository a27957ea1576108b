"""Secret masking, the local secret store and secret references."""

from __future__ import annotations

import copy
import hmac
import json
import logging
import os
import pickle
import stat
import string
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pgfortress import secrets as secrets_module
from pgfortress.errors import SecretStoreError, SpecError
from pgfortress.secrets import (
    Secret,
    SecretStore,
    resolve_secret_ref,
    write_file_atomically,
)

CLEARTEXT = "correct-horse-battery-staple"
URL_SAFE = set(string.ascii_letters + string.digits + "-_")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "secrets")


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def other_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every existing file look as if another user owned it."""
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 4242)


def write_secret_file(path: Path, content: str, mode: int = 0o600) -> Path:
    path.write_text(content)
    path.chmod(mode)
    return path


# --- Secret ------------------------------------------------------------------


@pytest.mark.parametrize(
    "render",
    [
        repr,
        str,
        lambda s: f"{s}",
        lambda s: f"{s!r}",
        lambda s: f"{s:>40}",
        lambda s: "%s" % s,  # noqa: UP031 - the old operator must mask too
        lambda s: "{}".format(s),  # noqa: UP032
        lambda s: str([s]),
        lambda s: str({"password": s}),
    ],
)
def test_every_printed_form_of_a_secret_is_masked(
    render: Callable[[Secret], str],
) -> None:
    text = render(Secret(CLEARTEXT))
    assert CLEARTEXT not in text
    assert "********" in text


def test_repr_names_the_type_and_hides_the_length() -> None:
    assert repr(Secret("x")) == repr(Secret(CLEARTEXT)) == "Secret('********')"


def test_logging_a_secret_prints_the_mask(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="pgfortress"):
        logging.getLogger("pgfortress").debug("password is %s", Secret(CLEARTEXT))
    assert CLEARTEXT not in caplog.text
    assert "********" in caplog.text


def test_reveal_returns_the_cleartext() -> None:
    assert Secret(CLEARTEXT).reveal() == CLEARTEXT


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (Secret("a"), Secret("a"), True),
        (Secret("a"), Secret("b"), False),
        (Secret("a"), Secret("ab"), False),
        (Secret("\u00e9"), Secret("\u00e9"), True),
        (Secret("a"), "a", False),
    ],
)
def test_secrets_compare_by_value(left: Secret, right: object, equal: bool) -> None:
    assert (left == right) is equal
    assert (left != right) is not equal


def test_equality_uses_a_constant_time_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert Secret("same") == Secret("same")
    assert calls == [(b"same", b"same")]


def test_a_secret_cannot_be_hashed() -> None:
    with pytest.raises(TypeError):
        hash(Secret(CLEARTEXT))
    with pytest.raises(TypeError):
        {Secret(CLEARTEXT)}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_secret_refuses_to_be_pickled(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled") as caught:
        pickle.dumps({"nested": [Secret(CLEARTEXT)]}, protocol=protocol)
    assert CLEARTEXT not in str(caught.value)


def test_json_refuses_a_secret_without_showing_it() -> None:
    with pytest.raises(TypeError) as caught:
        json.dumps({"password": Secret(CLEARTEXT)})
    assert CLEARTEXT not in str(caught.value)


def test_copying_a_secret_keeps_the_same_immutable_object() -> None:
    secret = Secret(CLEARTEXT)
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"s": secret})["s"] is secret


def test_a_secret_wraps_only_strings() -> None:
    with pytest.raises(TypeError, match="not bytes"):
        Secret(b"bytes")  # type: ignore[arg-type]


# --- SecretStore: creation ---------------------------------------------------


def test_get_or_create_makes_a_private_directory_and_file(
    store: SecretStore, permissive_umask: None
) -> None:
    secret = store.get_or_create("replicator")

    path = store.path("replicator")
    assert mode_of(store.directory) == 0o700
    assert mode_of(path) == 0o600
    assert path.read_text() == secret.reveal() + "\n"
    assert len(secret.reveal()) == 32
    assert set(secret.reveal()) <= URL_SAFE


def test_get_or_create_returns_the_same_secret_every_time(store: SecretStore) -> None:
    first = store.get_or_create("app")
    assert store.get_or_create("app") == first
    assert store.get("app") == first
    assert store.get_or_create("other") != first


@pytest.mark.parametrize("length", [16, 48, 1024])
def test_get_or_create_honours_the_length(store: SecretStore, length: int) -> None:
    assert len(store.get_or_create(f"s{length}", length=length).reveal()) == length


@pytest.mark.parametrize("length", [0, 15, 1025])
def test_get_or_create_rejects_weak_or_silly_lengths(
    store: SecretStore, length: int
) -> None:
    with pytest.raises(SpecError, match=f"secret length {length}"):
        store.get_or_create("x", length=length)


def test_nested_names_create_private_subdirectories(
    store: SecretStore, permissive_umask: None
) -> None:
    store.get_or_create("db1.example.com/replicator")
    assert mode_of(store.directory / "db1.example.com") == 0o700
    assert mode_of(store.path("db1.example.com/replicator")) == 0o600


def test_the_new_file_is_created_exclusively_with_mode_0600(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def recording_open(path: str | Path, flags: int, mode: int = 0o777) -> int:
        opened.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", recording_open)
    store.get_or_create("app")

    created = [entry for entry in opened if entry[1] & os.O_CREAT]
    assert len(created) == 1
    _, flags, mode = created[0]
    assert flags & os.O_EXCL
    assert mode == 0o600


def test_a_concurrent_creator_wins_and_its_secret_is_used(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lose_the_race(path: Path, data: bytes, *, mode: int = 0o600) -> None:
        write_secret_file(path, "created-by-the-other-run\n")
        raise FileExistsError(path)

    monkeypatch.setattr(secrets_module, "write_file_atomically", lose_the_race)
    assert store.get_or_create("app") == Secret("created-by-the-other-run")


def test_path_does_not_touch_the_disk(store: SecretStore) -> None:
    assert store.path("a/b") == store.directory / "a" / "b"
    assert not store.directory.exists()


@pytest.mark.parametrize(
    "name",
    ["a", "a.b", "host-1/role_x", "db1.example.com/app", "A_9-z"],
)
def test_valid_names(store: SecretStore, name: str) -> None:
    assert store.path(name).is_relative_to(store.directory)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".hidden",
        "..",
        "../escape",
        "a/../b",
        "a/./b",
        "/absolute",
        "a/",
        "a//b",
        "with space",
        "back\\slash",
        "caf\u00e9",
        "new\nline",
    ],
)
def test_invalid_names_are_refused(store: SecretStore, name: str) -> None:
    with pytest.raises(SpecError, match="secret name") as caught:
        store.path(name)
    assert "segments of letters" in str(caught.value)


# --- SecretStore: refusals ---------------------------------------------------


def test_a_group_readable_store_directory_is_refused(store: SecretStore) -> None:
    store.get_or_create("app")
    store.directory.chmod(0o750)
    with pytest.raises(SecretStoreError) as caught:
        store.get("app")
    message = str(caught.value)
    assert str(store.directory) in message
    assert "0750" in message
    assert f"chmod 700 {store.directory}" in message


def test_an_open_subdirectory_is_refused(store: SecretStore) -> None:
    store.get_or_create("db1/app")
    (store.directory / "db1").chmod(0o755)
    with pytest.raises(SecretStoreError, match="0755") as caught:
        store.get_or_create("db1/app")
    assert f"chmod 700 {store.directory / 'db1'}" in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o700, 0o666])
def test_a_secret_file_with_a_wrong_mode_is_refused(
    store: SecretStore, mode: int
) -> None:
    secret = store.get_or_create("app")
    store.path("app").chmod(mode)
    with pytest.raises(SecretStoreError) as caught:
        store.get("app")
    message = str(caught.value)
    assert f"{mode:04o}" in message
    assert f"chmod 600 {store.path('app')}" in message
    assert secret.reveal() not in message


def test_a_store_owned_by_another_user_is_refused(
    store: SecretStore, other_user: None
) -> None:
    store.directory.mkdir(mode=0o700)
    with pytest.raises(SecretStoreError, match="owned by uid") as caught:
        store.get_or_create("app")
    assert str(store.directory) in str(caught.value)
    assert "chown" in str(caught.value)


def test_get_names_the_missing_file(store: SecretStore) -> None:
    store.get_or_create("present")
    with pytest.raises(SecretStoreError, match="does not exist") as caught:
        store.get("absent")
    assert str(store.path("absent")) in str(caught.value)


def test_get_names_the_missing_store(store: SecretStore) -> None:
    with pytest.raises(SecretStoreError, match="does not exist") as caught:
        store.get("app")
    assert str(store.directory) in str(caught.value)
    assert not store.directory.exists()


def test_a_symlink_in_the_store_is_refused(store: SecretStore, tmp_path: Path) -> None:
    store.get_or_create("real")
    store.path("link").symlink_to(store.path("real"))
    with pytest.raises(SecretStoreError, match="symbolic link"):
        store.get("link")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("value\n", "value"),
        ("value\r\n", "value"),
        ("value", "value"),
        ("a\nb\n", "a\nb"),
    ],
)
def test_one_line_ending_is_dropped(
    store: SecretStore, content: str, expected: str
) -> None:
    store.get_or_create("app")
    write_secret_file(store.path("app"), content)
    assert store.get("app").reveal() == expected


def test_an_empty_secret_file_is_refused(store: SecretStore) -> None:
    store.get_or_create("app")
    write_secret_file(store.path("app"), "\n")
    with pytest.raises(SecretStoreError, match="is empty"):
        store.get("app")


# --- write_file_atomically ---------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o644])
def test_write_file_atomically_sets_the_exact_mode(
    tmp_path: Path, mode: int, permissive_umask: None
) -> None:
    target = tmp_path / "file"
    write_file_atomically(target, b"data", mode=mode)
    assert target.read_bytes() == b"data"
    assert mode_of(target) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_write_file_atomically_keeps_an_existing_file_unless_told(
    tmp_path: Path,
) -> None:
    target = tmp_path / "file"
    write_file_atomically(target, b"old")
    with pytest.raises(FileExistsError):
        write_file_atomically(target, b"new")
    assert target.read_bytes() == b"old"

    write_file_atomically(target, b"new", replace=True)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


# --- resolve_secret_ref ------------------------------------------------------


def test_no_reference_uses_the_store(store: SecretStore) -> None:
    secret = resolve_secret_ref(None, store, "db1/app")
    assert secret == store.get("db1/app")


def test_env_reference_reads_the_variable(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGF_TEST_PASSWORD", CLEARTEXT)
    assert resolve_secret_ref("env:PGF_TEST_PASSWORD", store, "app").reveal() == (
        CLEARTEXT
    )
    assert not store.directory.exists()


@pytest.mark.parametrize("value", [None, ""])
def test_env_reference_to_an_unset_or_empty_variable_names_it(
    store: SecretStore, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("PGF_TEST_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("PGF_TEST_PASSWORD", value)
    with pytest.raises(SecretStoreError, match="PGF_TEST_PASSWORD") as caught:
        resolve_secret_ref("env:PGF_TEST_PASSWORD", store, "app")
    assert "export PGF_TEST_PASSWORD" in str(caught.value)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_file_reference_reads_a_private_file(
    store: SecretStore, tmp_path: Path, mode: int
) -> None:
    path = write_secret_file(tmp_path / "pw", f"{CLEARTEXT}\n", mode)
    assert resolve_secret_ref(f"file:{path}", store, "app").reveal() == CLEARTEXT


def test_file_reference_expands_the_home_directory(
    store: SecretStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_secret_file(tmp_path / "pw", CLEARTEXT)
    assert resolve_secret_ref("file:~/pw", store, "app").reveal() == CLEARTEXT


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o660, 0o700])
def test_file_reference_to_an_open_file_is_refused(
    store: SecretStore, tmp_path: Path, mode: int
) -> None:
    path = write_secret_file(tmp_path / "pw", CLEARTEXT, mode)
    with pytest.raises(SecretStoreError) as caught:
        resolve_secret_ref(f"file:{path}", store, "app")
    message = str(caught.value)
    assert f"chmod 600 {path}" in message
    assert CLEARTEXT not in message


def test_file_reference_to_another_users_file_is_refused(
    store: SecretStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_secret_file(tmp_path / "pw", CLEARTEXT)
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 4242)
    with pytest.raises(SecretStoreError, match="owned by uid") as caught:
        resolve_secret_ref(f"file:{path}", store, "app")
    assert str(path) in str(caught.value)


def test_file_reference_to_a_missing_file_names_it(
    store: SecretStore, tmp_path: Path
) -> None:
    with pytest.raises(SecretStoreError, match="does not exist") as caught:
        resolve_secret_ref(f"file:{tmp_path / 'nope'}", store, "app")
    assert str(tmp_path / "nope") in str(caught.value)


def test_file_reference_to_a_fifo_does_not_hang(
    store: SecretStore, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(SecretStoreError, match="not a regular file"):
        resolve_secret_ref(f"file:{fifo}", store, "app")


@pytest.mark.parametrize(
    "ref", ["env:", "env:1BAD", "env:A-B", "ENV:HOME", "file:", "file:relative/pw"]
)
def test_malformed_references_are_named_with_the_accepted_forms(
    store: SecretStore, ref: str
) -> None:
    with pytest.raises(SpecError) as caught:
        resolve_secret_ref(ref, store, "db1/app")
    message = str(caught.value)
    assert repr(ref) in message
    assert "env:VARIABLE" in message
    assert "file:/absolute/path" in message


@pytest.mark.parametrize("ref", ["", CLEARTEXT, "vault:kv/app", "p@ss:word"])
def test_a_value_that_is_no_reference_is_not_echoed(
    store: SecretStore, ref: str
) -> None:
    with pytest.raises(SpecError) as caught:
        resolve_secret_ref(ref, store, "db1/app")
    message = str(caught.value)
    assert "db1/app" in message
    assert "env:VARIABLE" in message
    if ref:
        assert ref not in message
