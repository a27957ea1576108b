"""Find and render the jinja2 templates shipped in ``templates/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def template_dir() -> Path:
    """The templates of an installed wheel, or of the checkout we run from."""
    for candidate in (_PACKAGE_DIR / "templates", _PACKAGE_DIR.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no templates directory next to {_PACKAGE_DIR}")


@cache
def _environment() -> jinja2.Environment:
    # Config files are not HTML: autoescape would corrupt them. Every value that
    # reaches a template has been validated or quoted by the caller.
    return jinja2.Environment(  # noqa: S701
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)
