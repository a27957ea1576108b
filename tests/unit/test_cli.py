"""The pgfortress command: CA and secrets subcommands, errors as one line."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from pgfortress.cli import main
from pgfortress.secrets import SecretStore


def test_ca_init_then_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca_dir = tmp_path / "ca"
    assert main(["ca", "init", "--dir", str(ca_dir), "--name", "Test CA"]) == 0
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    assert main(["ca", "show", "--dir", str(ca_dir)]) == 0
    assert "CN=Test CA" in capsys.readouterr().out


def test_a_missing_ca_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ca", "show", "--dir", str(tmp_path / "nope")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("pgfortress: ")
    assert "pgfortress ca init" in error


def test_rotate_replaces_the_password_and_keeps_the_previous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "secrets"
    store = SecretStore(store_dir)
    old = store.get_or_create("db1/app_rw").reveal()
    assert (
        main(
            ["secrets", "rotate", "--store", str(store_dir), "--host", "db1", "app_rw"]
        )
        == 0
    )
    new = store.get("db1/app_rw").reveal()
    assert new != old
    assert store.get("db1/app_rw.previous").reveal() == old
    for name in ("db1/app_rw", "db1/app_rw.previous"):
        assert store.path(name).stat().st_mode & 0o777 == 0o600
    out = capsys.readouterr().out
    assert "deploys/site.py" in out
    assert new not in out
    assert old not in out


def test_rotate_refuses_a_secret_that_was_never_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "secrets"
    SecretStore(store_dir).get_or_create("db1/app_rw")
    argv = ["secrets", "rotate", "--store", "SECRETS_DIR", "--host", "db1", "app_rw"]
    assert main(argv) == 2
    assert "no secret db1/app_rw in SECRETS_DIR" in capsys.readouterr().err
    assert not Path("SECRETS_DIR").exists()
    typo = ["secrets", "rotate", "--store", str(store_dir), "--host", "db1", "app_rx"]
    assert main(typo) == 2
    assert not (store_dir / "db1" / "app_rx").exists()


def test_token_is_hs256_with_the_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_text("a-secret-of-at-least-thirty-two-bytes!!\n")
    assert main(["token", "--secret-file", str(secret), "--role", "web_user"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(
        token, "a-secret-of-at-least-thirty-two-bytes!!", algorithms=["HS256"]
    )
    assert claims["role"] == "web_user"
    assert claims["exp"] > claims.get("iat", 0)


@pytest.mark.parametrize(
    ("secret", "extra", "message"),
    [
        (None, [], "--secret-file"),
        ("", [], "holds 0 bytes"),
        ("short", [], "at least 32 bytes"),
        ("a-secret-of-at-least-thirty-two-bytes!!", ["--minutes", "-5"], "--minutes"),
    ],
    ids=["missing-file", "empty", "short", "negative-minutes"],
)
def test_token_refuses_bad_input_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    secret: str | None,
    extra: list[str],
    message: str,
) -> None:
    path = tmp_path / "jwt-secret"
    if secret is not None:
        path.write_text(secret)
    argv = ["token", "--secret-file", str(path), "--role", "web_user", *extra]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pgfortress: ")
    assert message in captured.err
    assert "Traceback" not in captured.err
