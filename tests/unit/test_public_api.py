"""The public surface is deliberate: pin each package's ``__all__``."""

from __future__ import annotations

import importlib

import pytest

import pgfortress
from pgfortress.errors import (
    LabError,
    PgFortressError,
    SecretStoreError,
    SpecError,
    TLSError,
)


def test_top_level_exports() -> None:
    assert sorted(pgfortress.__all__) == [
        "LabError",
        "PgFortressError",
        "SecretStoreError",
        "SpecError",
        "TLSError",
        "__version__",
    ]


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("pgfortress.spec", ["HbaRule", "PostgresHostSpec", "from_host_data"]),
        (
            "pgfortress.plan",
            [
                "PostgresLayout",
                "layout_for",
                "render_hba",
                "render_settings",
                "resolve_listen",
            ],
        ),
    ],
)
def test_package_exports(module: str, names: list[str]) -> None:
    assert sorted(importlib.import_module(module).__all__) == names


@pytest.mark.parametrize("error", [SpecError, TLSError, SecretStoreError, LabError])
def test_every_error_has_one_root(error: type[Exception]) -> None:
    assert issubclass(error, PgFortressError)


def test_spec_errors_are_value_errors() -> None:
    assert issubclass(SpecError, ValueError)


@pytest.mark.parametrize("module", ["pgfortress.spec", "pgfortress.plan"])
def test_planning_never_imports_pyinfra_or_the_lab(module: str) -> None:
    import subprocess
    import sys

    code = (
        f"import sys, {module}; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'pyinfra' "
        "or m.startswith('pgfortress.lab')]; print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
