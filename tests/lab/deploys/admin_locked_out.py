"""Lab fault test: a pg_hba.conf that PostgreSQL accepts but that locks out its admin.

The rendered policy's first line lets the postgres OS user in over the
socket; here it is turned into a ``reject``, which the renderer never writes.
PostgreSQL parses the file fine, so only the check after the reload sees
that the administrator can no longer connect.
"""

import re
from dataclasses import replace

from pyinfra.context import host

from roles.postgres_server import apply_files, server_config

if "db" in host.groups:
    config = server_config()
    (hba,) = [f for f in config.files() if f.dest == config.layout.hba_file]
    text = str(hba.content)
    admin = re.compile(r"^(local\s+all\s+postgres\s+)peer$", re.MULTILINE)
    locked = admin.sub(r"\1reject", text, count=1)
    assert locked != text, "the rendered policy has no peer line for postgres"
    apply_files(config, [replace(hba, content=locked)])
