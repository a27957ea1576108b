"""The guard in conftest.py works: a unit test cannot reach any host."""

from __future__ import annotations

import socket

import pytest

from .conftest import HostContactedError


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_a_connection_attempt_fails_the_test(family: socket.AddressFamily) -> None:
    loopback = "127.0.0.1" if family == socket.AF_INET else "::1"
    with (
        socket.socket(family, socket.SOCK_STREAM) as attempt,
        pytest.raises(HostContactedError, match="tried to connect"),
    ):
        attempt.connect((loopback, 9))
