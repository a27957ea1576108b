"""Several workers: a worker that cannot start takes the whole gateway down.

The gateway runs as its own process, as the service manager runs it, with two
workers, counters in a Redis and a database address where nothing listens.
Each worker fails to start: with code 2 where redis-py is not installed (the
store cannot be built), else with uvicorn's "could not start" code 3 (the
database does not answer). The main process must exit with that code and
leave no worker behind.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "0123456789abcdef0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    for name, text, mode in [
        ("password", "pw\n", 0o600),
        ("secret", SECRET + "\n", 0o600),
        ("ca.crt", "-----BEGIN CERTIFICATE-----\n", 0o644),
    ]:
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(mode)
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[database]
host = "127.0.0.1"
port = {_free_port()}
dbname = "app"
user = "authenticator"
password_file = "{tmp_path / "password"}"
sslrootcert = "{tmp_path / "ca.crt"}"
connect_timeout = 1

[api]
schema = "api"
anonymous_role = "web_anon"

[jwt]
secret_file = "{tmp_path / "secret"}"

[limits]
storage_uri = "redis://127.0.0.1:{_free_port()}"

[server]
listen_host = "127.0.0.1"
listen_port = {_free_port()}
metrics_port = {_free_port()}
workers = 2
"""
    )
    return path


def run_until_it_stops(config_file: Path) -> tuple[subprocess.Popen[str], str]:
    """Start the gateway in a session of its own and wait (at most a minute)
    for it to exit; whatever is left of it is killed."""
    gateway = subprocess.Popen(
        [sys.executable, "-m", "pgfortress_gateway", "--config", str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = gateway.communicate(timeout=60)
    finally:
        if gateway.poll() is None:
            os.killpg(gateway.pid, signal.SIGKILL)
    return gateway, output


def test_a_worker_that_cannot_start_stops_the_gateway(config_file: Path) -> None:
    gateway, output = run_until_it_stops(config_file)
    expected = 3 if importlib.util.find_spec("redis") else 2
    assert gateway.returncode == expected, output
    assert "started 2 workers" in output
    assert f"exited with code {expected}; stopping the others" in output
    with pytest.raises(ProcessLookupError):
        os.killpg(gateway.pid, 0)  # no worker outlived the main process


def test_workers_without_redis_count_in_shared_memory(config_file: Path) -> None:
    text = config_file.read_text()
    start = text.index("[limits]")
    config_file.write_text(text[:start] + text[text.index("[server]") :])
    gateway, output = run_until_it_stops(config_file)
    # The workers got as far as the database, which does not answer.
    assert gateway.returncode == 3, output
    # The first worker to fail stops the other, perhaps before it said so.
    assert "counters in shared memory storage" in output, output
