"""``pgfortress image``: bad input stops it before any lab or host is touched."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

import pgfortress.image
from pgfortress.cli import _parser, main
from pgfortress.image.export import BuildRecord, artifacts_for, write_build_record

KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7" * 2
    + "\n-----END PRIVATE KEY-----\n"
)


def test_public_surface_is_pinned() -> None:
    assert sorted(pgfortress.image.__all__) == [
        "Finding",
        "IdentityPlan",
        "ImageError",
        "clean_root",
        "identity_plan",
        "scan_root",
        "scan_tarball",
    ]


def test_a_missing_database_roles_spec_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "image",
            "build",
            "--role=db",
            f"--out={tmp_path}",
            f"--database-roles={tmp_path / 'nope.yml'}",
        ]
    )
    assert code == 2
    assert "--database-roles" in capsys.readouterr().err


def test_only_known_roles_and_platforms_are_accepted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--role=web"], ["--role=db", "--platform=debian11"]):
        with pytest.raises(SystemExit) as stopped:
            main(["image", "build", *argv])
        assert stopped.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_verify_wants_the_tarball_build_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["image", "verify", str(tmp_path / "x.tar.zst")]) == 2
    assert "ends in .rootfs.tar.zst" in capsys.readouterr().err
    assert main(["image", "verify", str(tmp_path / "x.rootfs.tar.zst")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_verify_refuses_an_image_with_a_key_before_booting_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    key = root / "etc/postgresql/15/main/tls/leftover.pem"
    key.parent.mkdir(parents=True)
    key.write_text(KEY)
    files = artifacts_for(tmp_path, "db", "debian12")
    subprocess.run(
        ["tar", "--zstd", "-C", str(root), "-cf", str(files.rootfs), "."], check=True
    )
    write_build_record(
        files.build,
        BuildRecord("db", "debian12", 15, "abc", "2026-12-05T00:00:00Z", False, None),
    )
    files.manifest.write_text(json.dumps({"stale": True}))

    # No lab exists or is started: the scan refuses first (and the unit
    # tests' conftest would fail any network use).
    assert main(["image", "verify", str(files.rootfs)]) == 2

    err = capsys.readouterr().err
    assert "/etc/postgresql/15/main/tls/leftover.pem: holds a PEM private key" in err
    assert not files.manifest.exists()


@pytest.mark.parametrize("role", ["db", "gateway"])
def test_the_example_ci_workflow_runs_commands_pgfortress_accepts(role: str) -> None:
    workflow = yaml.safe_load(
        (Path(__file__).parents[2] / "docs/examples/image-ci.yml").read_text()
    )
    assert role in workflow["jobs"]["image"]["strategy"]["matrix"]["role"]
    values = {"matrix.role": role, "matrix.platform": "debian12"}
    values |= {"github.run_attempt": "1", "github.sha": "abc"}
    commands = []
    for step in workflow["jobs"]["image"]["steps"]:
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            for name, value in values.items():
                line = line.replace("${{ " + name + " }}", value)
            words = shlex.split(line.replace('"$OUT"', "images"))
            if words and words[0] == ".venv/bin/pgfortress":
                commands.append(words[1:])
    assert [c[:2] for c in commands] == [["image", "build"], ["lab", "down"]]
    for argv in commands:
        args = _parser().parse_args(argv)
        assert args.handler is not None
