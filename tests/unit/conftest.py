"""Unit tests need no host: any attempt to reach one fails the test.

Every spec, plan and bad-input case here runs without a network connection;
this makes that a checked property rather than a habit. Binding a local
socket (the lab's process tests do) is still allowed.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest


class HostContactedError(AssertionError):
    """A unit test tried to open a connection."""


@pytest.fixture(autouse=True)
def no_host_is_contacted(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any, *args: Any) -> None:
        raise HostContactedError(f"a unit test tried to connect to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
