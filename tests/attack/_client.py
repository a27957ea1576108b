"""Programs run on a client lab host, where an attacker of the API stands.

A program is plain Python (the host has python3 and nothing else of ours),
sent on SSH's stdin together with its input, so tokens never appear in a
command line. It prints one JSON document, its result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pgfortress.lab import LabState
from tests.lab.conftest import ssh

__all__ = ["PRELUDE", "ClientHost"]

# Helpers every program may use: HTTPS calls that keep one connection, with
# the lab CA as the only trust anchor, and answers as (status, headers, text).
PRELUDE = """
import http.client, json, socket, ssl, sys, time, urllib.parse

CA = "/root/lab-ca.crt"

def context():
    return ssl.create_default_context(cafile=CA)

class Api:
    def __init__(self, host, port=8443):
        self.host, self.port = host, port
        self.connection = None

    def call(self, method, path, headers=None, body=None):
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(
                    self.host, self.port, context=context(), timeout=15)
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                answer = self.connection.getresponse()
                text = answer.read().decode("utf-8", "replace")
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt == 2:
                    raise
                continue
            if answer.getheader("Connection", "").lower() == "close":
                self.connection.close()
                self.connection = None
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, text

def quote(text):
    return urllib.parse.quote(text, safe="")
"""


@dataclass(frozen=True)
class ClientHost:
    lab: LabState
    name: str

    @property
    def address(self) -> str:
        return self.lab.hosts[self.name].address

    def put(self, path: str, text: str) -> None:
        ssh(self.lab, self.name, f"umask 077; cat > {path}", stdin=text)

    def run(self, program: str, data: Any = None) -> Any:
        """Run ``program`` (which sets ``result``) with ``DATA`` bound to ``data``."""
        source = "\n".join(
            [
                PRELUDE,
                f"DATA = json.loads({json.dumps(json.dumps(data))})",
                program,
                "print(json.dumps(result))",
            ]
        )
        return json.loads(ssh(self.lab, self.name, "python3 -", stdin=source))
