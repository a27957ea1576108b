#!/usr/bin/env bash
# make demo: boot a lab, harden PostgreSQL on it, verify it, print how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."

lab="${1:-demo}"
bin=.venv/bin
export PGFORTRESS_LAB="$lab"
# Every host gets the nftables firewall (inventories/lab.py reads this), with
# this machine as the admin network; deploys/site.py applies it first.
export PGFORTRESS_LAB_FIREWALL=on

step() { printf '\n==> %s\n' "$*"; }

step "Booting lab '$lab' (db1, gw1, client1)"
"$bin/pgfortress" lab up --name "$lab" --hosts db1,gw1,client1

read -r lab_dir db_address gw_address ssh_config < <("$bin/python" -c '
import sys
from pgfortress.lab import load
lab = load(sys.argv[1])
print(lab.dir, lab.hosts["db1"].address, lab.hosts["gw1"].address, lab.ssh_config)
' "$lab")

if [ ! -d "$lab_dir/ca" ]; then
    step "Creating the lab's certificate authority in $lab_dir/ca"
    "$bin/pgfortress" ca init --dir "$lab_dir/ca" --name "pgfortress lab $lab CA"
fi

step "Deploying the firewall, hardened PostgreSQL and the database roles: pyinfra inventories/lab.py deploys/site.py"
"$bin/pyinfra" -y inventories/lab.py deploys/site.py

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

step "Creating the demo application's tables as app_migrator (docs/examples/api-app.sql)"
migrator_pass="$lab_dir/pgpass-migrator"
( umask 077; printf '*:*:*:app_migrator:%s\n' \
    "$(cat "$lab_dir/secrets/db1/app_migrator")" > "$migrator_pass" )
app_dsn="host=$db_address dbname=app user=app_migrator sslmode=verify-full sslrootcert=$lab_dir/ca/ca.crt"
if PGPASSFILE="$migrator_pass" psql -X -At "$app_dsn" -c "SET ROLE app_owner" \
    -c "SELECT to_regclass('api.customers') IS NULL" | grep -qx t; then
    PGPASSFILE="$migrator_pass" psql -X -q -v ON_ERROR_STOP=1 "$app_dsn" \
        -f docs/examples/api-app.sql
fi

step "Installing the gateway on gw1: pyinfra inventories/lab.py deploys/gateway.py"
"$bin/pyinfra" -y inventories/lab.py deploys/gateway.py
# The gateway reads the schema at start and every minute; restart it so the
# demo does not wait for tables created just now.
ssh -F "$ssh_config" gw1 systemctl restart pgfortress-gateway
for _ in $(seq 1 50); do
    curl -s -o /dev/null --cacert "$lab_dir/ca/ca.crt" "https://$gw_address:8443/" && break
    sleep 0.2
done

step "Checking the host firewall from client1, which stands on the client network"
probe() {  # can client1 open a TCP connection to $1:$2?
    ssh -F "$ssh_config" client1 "timeout 3 bash -c '</dev/tcp/$1/$2'" 2>/dev/null
}
if probe "$db_address" 5432; then
    echo "ERROR: client1 reached PostgreSQL through the firewall" >&2
    exit 1
fi
echo "client1 -> db1:5432 (PostgreSQL): dropped"
probe "$gw_address" 8443 || { echo "ERROR: client1 cannot reach the gateway" >&2; exit 1; }
echo "client1 -> gw1:8443 (the gateway): open"

step "Calling the gateway over HTTPS"
token="$("$bin/pgfortress" token --secret-file "$lab_dir/secrets/gateway/jwt-secret" --role web_user)"
api="https://$gw_address:8443"
# The token goes to curl through a header file, never on its command line.
header_file="$lab_dir/demo-auth-header"
( umask 077; printf 'Authorization: Bearer %s\n' "$token" > "$header_file" )
echo "with a token:"
curl --fail-with-body -sS --cacert "$lab_dir/ca/ca.crt" -H @"$header_file" \
    "$api/customers?select=name,orders(id,total)&order=id"
echo
echo "with a forged token (must be refused):"
forged_secret="$lab_dir/demo-forged-secret"
( umask 077; head -c 48 /dev/urandom | base64 > "$forged_secret" )
forged_header="$lab_dir/demo-forged-header"
( umask 077; printf 'Authorization: Bearer %s\n' \
    "$("$bin/pgfortress" token --secret-file "$forged_secret" --role web_user)" \
    > "$forged_header" )
status=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$lab_dir/ca/ca.crt" \
    -H @"$forged_header" "$api/customers")
echo "HTTP $status"
[ "$status" = 401 ] || { echo "ERROR: the gateway answered $status to a forged token" >&2; exit 1; }
refused_token() {  # $1: what it is, $2: the token; the gateway must answer 401
    local header_file="$lab_dir/demo-refused-header" status
    ( umask 077; printf 'Authorization: Bearer %s\n' "$2" > "$header_file" )
    status=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$lab_dir/ca/ca.crt" \
        -H @"$header_file" "$api/customers")
    rm -f "$header_file"
    echo "$1 (must be refused): HTTP $status"
    [ "$status" = 401 ] || { echo "ERROR: the gateway answered $status to $1" >&2; exit 1; }
}
refused_token "a garbage token" "not.a.token"
refused_token "an alg:none token" "$("$bin/python" -c '
import base64, json, time
part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
claims = {"role": "web_user", "sub": "demo", "exp": int(time.time()) + 600}
print(part({"alg": "none", "typ": "JWT"}) + "." + part(claims) + ".")
')"
echo "without a token (must be refused):"
status=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$lab_dir/ca/ca.crt" "$api/customers")
echo "HTTP $status"
[ "$status" = 401 ] || { echo "ERROR: the gateway answered $status without a token" >&2; exit 1; }

cat <<EOT

The lab is up. Connect with:

    PGPASSFILE=$passfile psql "$dsn"

Call the API:   curl --cacert $lab_dir/ca/ca.crt -H @$header_file $api/customers
  (a new token: .venv/bin/pgfortress token --secret-file $lab_dir/secrets/gateway/jwt-secret --role web_user)

Reach the hosts with:   ssh -F $ssh_config db1
Deploy again (no change): PGFORTRESS_LAB=$lab PGFORTRESS_LAB_FIREWALL=on $bin/pyinfra -y inventories/lab.py deploys/site.py
Audit every host:        PGFORTRESS_LAB=$lab PGFORTRESS_LAB_FIREWALL=on $bin/pgfortress audit inventories/lab.py
Take the lab down:       make demo-down LAB=$lab
EOT
