#!/usr/bin/env bash
# Install the Debian packages the lab and the tests need on the control machine.
# Safe to run again: does nothing when everything is already installed.
set -euo pipefail

packages=(
    debootstrap          # builds the hosts' root filesystem
    systemd-container    # systemd-nspawn boots each host with systemd as PID 1
    apt-cacher-ng        # the hosts' only way to Debian packages, cached between runs
    zstd                 # compresses the cached root filesystem
    iproute2             # bridge, veth and network namespaces
    openssh-client       # reach the hosts the way production hosts are reached
    postgresql-client    # psql, to prove TLS from the control machine
    curl                 # the demo calls the gateway like any HTTP client
    skopeo               # reads the OCI archives of pgfortress image build (tests)
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$package")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages: all present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system packages missing (${missing[*]}); run as root or install them" >&2
    exit 1
fi

echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian's apt-cacher-ng package would start a system-wide proxy on *:3142,
# which blocks every lab's own proxy. policy-rc.d tells the package scripts not
# to start services; it is removed again as soon as the install is done.
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=yes
fi
cleanup() { if [ "$created_policy" = yes ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
