"""Lab fault test: a pg_hba.conf that PostgreSQL rejects, past pgfortress's checks.

The policy is rendered from the inventory as usual, then one rule's method is
misspelt by hand (``scram-sha-257``), which the inventory validation would
have refused. The role's own apply path must keep it from ever going live.
"""

from dataclasses import replace

from pyinfra.context import host

from roles.postgres_server import apply_files, server_config

if "db" in host.groups:
    config = server_config()
    (hba,) = [f for f in config.files() if f.dest == config.layout.hba_file]
    text = str(hba.content)
    broken = text.replace(" scram-sha-256", " scram-sha-257", 1)
    assert broken != text, "the lab policy has no scram-sha-256 rule to break"
    apply_files(config, [replace(hba, content=broken)])
