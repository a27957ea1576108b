#!/usr/bin/env bash
# make demo: boot a lab, harden PostgreSQL on it, verify it, print how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."

lab="${1:-demo}"
bin=.venv/bin
export PGFORTRESS_LAB="$lab"

step() { printf '\n==> %s\n' "$*"; }

step "Booting lab '$lab' (db1, gw1, client1)"
"$bin/pgfortress" lab up --name "$lab" --hosts db1,gw1,client1

read -r lab_dir db_address ssh_config < <("$bin/python" -c '
import sys
from pgfortress.lab import load
lab = load(sys.argv[1])
print(lab.dir, lab.hosts["db1"].address, lab.ssh_config)
' "$lab")

if [ ! -d "$lab_dir/ca" ]; then
    step "Creating the lab's certificate authority in $lab_dir/ca"
    "$bin/pgfortress" ca init --dir "$lab_dir/ca" --name "pgfortress lab $lab CA"
fi

step "Deploying hardened PostgreSQL: pyinfra inventories/lab.py deploys/postgres.py"
"$bin/pyinfra" -y inventories/lab.py deploys/postgres.py

step "Verifying db1 with testinfra"
"$bin/pytest" tests/host -q -p no:cacheprovider --hosts=ssh://db1 \
    --ssh-config="$ssh_config" --pgf-inventory=inventories/lab.py

step "Connecting from this machine over TLS (verify-full)"
passfile="$lab_dir/pgpass"
( umask 077; printf '*:*:*:pgfortress_probe:%s\n' \
    "$(cat "$lab_dir/secrets/db1/pgfortress_probe")" > "$passfile" )
dsn="host=$db_address dbname=postgres user=pgfortress_probe sslmode=verify-full sslrootcert=$lab_dir/ca/ca.crt"
PGPASSFILE="$passfile" psql -X "$dsn" \
    -c "SELECT current_user, ssl, version AS tls FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

step "A plaintext connection is refused, as it should be"
if PGPASSFILE="$passfile" psql -X "host=$db_address dbname=postgres user=pgfortress_probe sslmode=disable" -c "SELECT 1" 2>&1; then
    echo "ERROR: a plaintext connection was accepted" >&2
    exit 1
fi

cat <<EOT

The lab is up. Connect with:

    PGPASSFILE=$passfile psql "$dsn"

Reach the hosts with:   ssh -F $ssh_config db1
Deploy again (no change): PGFORTRESS_LAB=$lab $bin/pyinfra -y inventories/lab.py deploys/postgres.py
Take the lab down:       make demo-down LAB=$lab
EOT
