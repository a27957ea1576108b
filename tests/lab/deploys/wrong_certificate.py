"""Lab fault test: a server certificate that does not match the server's key.

PostgreSQL accepts the configuration files, but on reload it cannot load a
certificate whose key is another one, and keeps serving the old certificate.
Only the check after applying sees it: TLS presents a certificate other than
the deployed file, so the role must put the previous file back.
"""

from dataclasses import replace

from pyinfra.context import host

from roles.postgres_server import apply_files, server_config

if "db" in host.groups:
    config = server_config()
    (chain,) = [f for f in config.files() if f.dest == config.layout.server_cert]
    # The CA's own certificate: well formed, but not for the server's key.
    apply_files(config, [replace(chain, content=config.ca_pem.decode())])
