"""The pgfortress gateway: a PostgREST-style HTTP API in front of PostgreSQL.

It is its own wing: it imports nothing from the provisioning side and ships
alone in the wheelhouse installed on gateway hosts.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
