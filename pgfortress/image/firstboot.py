"""The image's first boot: what each copy makes for itself before it serves.

An image carries no SSH host key and no TLS key (:mod:`.identity`). A unit,
``pgfortress-first-boot.service``, runs before sshd and PostgreSQL at every
boot and makes what is missing, on the host and for the host only:

- SSH host keys (``ssh-keygen -A``), when there is none at all;
- a temporary TLS pair for PostgreSQL, so that the server (TLS on, loopback
  only in the image) starts: a leaf and a one-off issuer made on the host,
  the issuer's key thrown away at once. The follow-up deploy replaces the
  pair with one issued by your CA;
- Debian's snakeoil pair, if the ssl-cert package is there.

Once a deploy has put its files in place nothing here runs again.

A gateway image makes no TLS pair at boot: the gateway cannot serve before it
knows its database, that database's password and its token key, which come
with the follow-up deploy together with its certificate. Its service is
enabled, and a drop-in (:data:`GATEWAY_DROP_IN`) makes systemd skip it, not
fail it, until the deploy has written its configuration.
"""

from __future__ import annotations

from pathlib import Path

from pgfortress.lab.hostroot import write_into

__all__ = [
    "GATEWAY_DROP_IN",
    "SCRIPT_PATH",
    "UNIT_NAME",
    "install_first_boot",
    "render_gateway_drop_in",
    "render_script",
    "render_unit",
]

UNIT_NAME = "pgfortress-first-boot.service"
SCRIPT_PATH = "usr/local/lib/pgfortress/first-boot"
GATEWAY_DROP_IN = (
    "etc/systemd/system/pgfortress-gateway.service.d/pgfortress-image.conf"
)

_TLS_PAIR = r"""
# PostgreSQL's TLS pair, until a deploy installs the one your CA issues.
tls=/etc/postgresql/{version}/main/tls
if [ -d "$tls" ] && [ ! -e "$tls/server.key" ]; then
    work=$(mktemp -d)
    name=$(hostname)
    curve="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    openssl req -x509 $curve -days 30 -subj "/CN=first boot of $name" \
        -keyout "$work/issuer.key" -out "$work/issuer.crt" 2>/dev/null
    openssl req $curve -subj "/CN=$name" \
        -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
    openssl x509 -req -days 30 -in "$work/server.csr" -CA "$work/issuer.crt" \
        -CAkey "$work/issuer.key" -set_serial "0x$(openssl rand -hex 16)" \
        -out "$work/server.crt" 2>/dev/null
    cat "$work/server.crt" "$work/issuer.crt" > "$work/chain.crt"
    install -o postgres -g postgres -m 600 "$work/server.key" "$tls/server.key"
    install -o root -g postgres -m 644 "$work/chain.crt" "$tls/server.crt"
    install -o root -g postgres -m 644 "$work/issuer.crt" "$tls/ca.crt"
    rm -rf "$work"
    echo "pgfortress first boot: temporary TLS pair for PostgreSQL made"
fi
"""


def render_script(postgres_version: int | None) -> str:
    """The first-boot shell script."""
    lines = [
        "#!/bin/sh",
        "# pgfortress first boot: make what an image must not carry.",
        "# See docs/reference/images.md. Runs at every boot; does nothing once",
        "# everything is there.",
        "set -eu",
        "umask 077",
        "",
        "# SSH host keys: an image has none.",
        "if ! ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1; then",
        "    ssh-keygen -A",
        '    echo "pgfortress first boot: SSH host keys made"',
        "fi",
        "",
        "# Debian's snakeoil pair, made by ssl-cert at install and removed.",
        "if [ -x /usr/sbin/make-ssl-cert ] &&",
        "    [ ! -e /etc/ssl/private/ssl-cert-snakeoil.key ]; then",
        "    DEBIAN_FRONTEND=noninteractive make-ssl-cert generate-default-snakeoil",
        "fi",
    ]
    text = "\n".join(lines) + "\n"
    if postgres_version is not None:
        text += _TLS_PAIR.replace("{version}", str(postgres_version))
    return text


def render_unit(postgres_version: int | None) -> str:
    """The systemd unit running the script before sshd and PostgreSQL."""
    before = ["ssh.service"]
    if postgres_version is not None:
        before += [f"postgresql@{postgres_version}-main.service", "postgresql.service"]
    return (
        "[Unit]\n"
        "Description=pgfortress first boot: SSH host keys and a temporary TLS pair\n"
        "After=local-fs.target\n"
        f"Before={' '.join(before)}\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart=/{SCRIPT_PATH}\n"
        "RemainAfterExit=yes\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def render_gateway_drop_in(config: str) -> str:
    """The gateway unit's drop-in: skipped until ``config`` exists."""
    return (
        "# pgfortress image: the gateway starts once a deploy has given this\n"
        "# host its configuration, certificate and secrets.\n"
        "[Unit]\n"
        f"ConditionPathExists={config}\n"
    )


def install_first_boot(
    root: Path, postgres_version: int | None, gateway_config: str | None = None
) -> None:
    """Write the script and the unit into ``root`` and enable the unit; with
    ``gateway_config``, the gateway's drop-in waiting for that file."""
    if gateway_config is not None:
        write_into(root, GATEWAY_DROP_IN, render_gateway_drop_in(gateway_config), 0o644)
    write_into(root, SCRIPT_PATH, render_script(postgres_version), 0o755)
    write_into(
        root, f"etc/systemd/system/{UNIT_NAME}", render_unit(postgres_version), 0o644
    )
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(mode=0o755, parents=True, exist_ok=True)
    link = wants / UNIT_NAME
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(f"/etc/systemd/system/{UNIT_NAME}")
