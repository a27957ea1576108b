"""Pure planning: validated spec in, configuration text and SQL out.

Nothing here imports pyinfra or opens a database connection, so every decision
is tested without a host.
"""

from __future__ import annotations

from .hba import render_hba
from .layout import PostgresLayout, layout_for
from .listen import resolve_listen
from .settings import render_settings

__all__ = [
    "PostgresLayout",
    "layout_for",
    "render_hba",
    "render_settings",
    "resolve_listen",
]
