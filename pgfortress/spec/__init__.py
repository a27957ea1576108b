"""Validated input: what inventories and spec files may say, checked up front."""

from __future__ import annotations

from .hba import HbaRule
from .postgres import PostgresHostSpec, from_host_data

__all__ = ["HbaRule", "PostgresHostSpec", "from_host_data"]
