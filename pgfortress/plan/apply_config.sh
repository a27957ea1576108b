# Swap staged configuration files in, have PostgreSQL check them, apply them
# (reload, or restart when a changed setting needs it), verify the server
# still answers, and put the previous files back if anything fails.
#
# pgfortress prepends the values used below (host, service, server_binary,
# psql_binary, config_file, settings_files, pid_file, log_file, socket_dir,
# port, tls_connect, cert_file) and sets "$@" to the files it manages; a file
# takes part when "<file>.pgf-candidate" exists. Lines on stdout start with
# "pgfortress: "; a failure exits 1 with one line on stderr that names the host.

# A dropped SSH session must not stop the script between two steps: it runs
# to the end, rolled back or applied, even when nobody reads its output.
trap '' HUP PIPE

say() { printf 'pgfortress: %s\n' "$*"; }
fail() { printf 'pgfortress: %s: %s\n' "$host" "$*" >&2; exit 1; }

# One apply at a time on a host: a run cut off from its SSH session goes on
# (see the trap above), and the next run waits for it rather than swapping
# files under it.
exec 9>/run/lock/pgfortress-apply.lock
flock -w 300 9 || fail "another pgfortress run held the apply lock for 5 minutes"

# The rest of the line as the postgres OS user: setpriv changes user and
# groups only (runuser would also open a PAM session, at a cost to the host
# for every process); env -C / spares the tools root's working directory.
as_postgres() {
    setpriv --reuid=postgres --regid=postgres --init-groups --reset-env \
        env -C / "$@"
}

# psql as the postgres OS user over a unix socket: directory, port, then one
# or more statements, run by one psql process, each answer on its own lines.
sql() {
    # Names of their own: $port and friends are the script's values.
    sql_dir=$1 sql_port=$2
    shift 2
    for statement; do
        set -- "$@" -c "$statement"
        shift
    done
    as_postgres "$psql_binary" -X -q -A -t -v ON_ERROR_STOP=1 \
        -d postgres -h "$sql_dir" -p "$sql_port" "$@" 2>&1
}

# Several lines as one.
one_line() { printf '%s' "$1" | tr '\n' ' '; }

# Server messages without their line prefix, joined with "; ".
messages() {
    sed -E 's/^.* (LOG|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT): +//' |
        sed -E ':a;N;$!ba;s/\n/; /g'
}

# The server's last messages matching $1 since log_mark, from the log that
# pg_ctlcluster keeps.
log_mark=0
server_log() {
    tail -c +"$((log_mark + 1))" "$log_file" 2>/dev/null | grep -E "$1" |
        tail -n 2 | messages
}

# pg_file_settings says "setting could not be applied" both for a value
# that only a restart can change and for a value that is not valid; the
# setting's context tells them apart, and the server binary (below) names
# what is wrong with a value.
# Each answer is one line (the two are read from one psql's output).
rejected_sql="SELECT translate(string_agg(problem, '; '), E'\\n', ' ') FROM (
    SELECT coalesce(f.sourcefile || ':' || f.sourceline || ': ', '')
        || coalesce(f.name || ': ', '') || f.error
    FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name
    WHERE f.error IS NOT NULL AND (f.error <> 'setting could not be applied'
        OR s.context IS DISTINCT FROM 'postmaster')
    UNION ALL
    SELECT current_setting('hba_file') || ':' || line_number || ': ' || error
    FROM pg_hba_file_rules WHERE error IS NOT NULL
) AS problems (problem)"
restart_sql="SELECT string_agg(DISTINCT name, ', ' ORDER BY name)
    || CASE count(DISTINCT name) WHEN 1 THEN ' needs' ELSE ' need' END
    || ' a restart'
    FROM pg_file_settings f JOIN pg_settings s USING (name)
    WHERE f.error = 'setting could not be applied' AND s.context = 'postmaster'"

# The server binary reads the configuration as a start would and reports
# each value it refuses, restart-only settings included. It reads settings
# only: pg_hba.conf and the TLS files are not its to judge (pg_hba_file_rules
# and the TLS check after the reload are), so when the new files are none of
# $settings_files it is not started, unless a setting needs a restart: the
# server would start with every value on disk, and pg_file_settings reports
# a refused restart-only value as one that merely needs a restart.
settings_changed() {
    [ -n "$swapped" ] || return 0
    for file in $swapped; do
        case " $settings_files " in *" $file "*) return 0 ;; esac
    done
    return 1
}
start_check() {
    settings_changed || [ -n "$restart" ] || return 0
    checked=$(as_postgres "$server_binary" \
        --config-file="$config_file" -C data_directory 2>&1 >/dev/null) && return
    printf '%s\n' "$checked" | messages
}

# Until it is signalled, the running server keeps its own port and socket
# directory, whatever the new files say: read them from its pid file.
[ -f "$pid_file" ] || fail "PostgreSQL is not running, so it cannot check" \
    "the new files; nothing was changed (start it: systemctl start $service)"
{ read -r _ && read -r _ && read -r _ && read -r run_port && read -r run_socket; } \
    <"$pid_file" || fail "cannot read the port and socket directory from" \
    "$pid_file; nothing changed"

# Put the previous files back; the new ones stay as <file>.pgf-rejected.
restore() {
    for file in $swapped; do
        if [ -e "$file.pgf-previous" ]; then
            ln -f "$file" "$file.pgf-rejected" &&
                ln -f "$file.pgf-previous" "$file.pgf-restore" &&
                mv -f "$file.pgf-restore" "$file"
        else
            mv -f "$file" "$file.pgf-rejected"
        fi || return 1
    done
}

swapped=""
for file in "$@"; do
    [ -e "$file.pgf-candidate" ] || continue
    # A hard link keeps the live file, owner, mode and time untouched, as
    # the previous version; the rename then swaps the candidate in at once.
    if [ -e "$file" ]; then
        ln -f "$file" "$file.pgf-previous" || {
            restore
            fail "cannot keep $file as $file.pgf-previous; nothing changed"
        }
    else
        rm -f "$file.pgf-previous"
    fi
    mv -f "$file.pgf-candidate" "$file" || {
        restore
        fail "cannot move $file.pgf-candidate into place; nothing changed"
    }
    swapped="$swapped $file"
done

subject="the new files"
back="the previous files are back (the new ones are kept as"
for file in $swapped; do
    back="$back ${file##*/}.pgf-rejected"
done
back="$back)"
if [ -z "$swapped" ]; then
    subject="the files on disk"
    back="there are no previous files to go back to"
fi

# When the server last read its files (a reload must change it), what it
# rejects in the files on disk, and which changed settings need a restart:
# from one psql process, a line each. Swapping files does not change the
# first; reading it here rather than before the swap saves the host a psql.
answers=$(sql "$run_socket" "$run_port" 'SELECT pg_conf_load_time()' \
    "$rejected_sql" "$restart_sql") || {
    cause="cannot reach PostgreSQL over $run_socket to check $subject:"
    cause="$cause $(one_line "$answers")"
    restore || fail "$cause; restoring the previous files failed too, fix" \
        "them by hand before anything reloads"
    fail "$cause; nothing was reloaded, $back"
}
{ read -r loaded; read -r out; read -r restart; } <<ANSWERS
$answers
ANSWERS
said=$(start_check)
[ -z "$said" ] || out="${out:+$out; }$said"
if [ -n "$out" ]; then
    restore || fail "PostgreSQL rejects $subject: $out; restoring the" \
        "previous ones failed too, fix them by hand before anything reloads"
    fail "PostgreSQL rejects $subject: $out; nothing was reloaded, $back"
fi

# Wait until a new connection over the wanted socket sees a configuration
# load other than "$1" (any, when empty): a reload is asynchronous. When the
# admin connected before, with the files "$1" was read from, a refusal by the
# server itself (FATAL) can only come from the new files: it is final.
reached=""
admin_connects() {
    tries=0
    while [ "$tries" -lt 50 ]; do
        if reached=$(sql "$socket_dir" "$port" 'SELECT pg_conf_load_time()'); then
            [ -n "$1" ] && [ "$reached" = "$1" ] || return 0
            reached="the server has not read its files again after 10 s"
        elif [ -n "$1" ]; then
            case $reached in
            *"starting up"*) ;;
            *FATAL:*) return 1 ;;
            esac
        fi
        tries=$((tries + 1))
        sleep 0.2
    done
    return 1
}

# The first certificate of a PEM stream as one line of base64: the same
# certificate always gives the same text, however its lines were wrapped, so
# two are compared without starting openssl for each (it costs the host more
# CPU than the rest of this check).
leaf_base64() {
    awk '/-----BEGIN CERTIFICATE-----/ { inside = 1; next }
        /-----END CERTIFICATE-----/ { if (inside) exit }
        inside' | tr -d ' \t\r\n'
}

# A certificate's SHA-256 fingerprint, from leaf_base64, as openssl shows it.
fingerprint() {
    printf '%s' "$1" | base64 -d 2>/dev/null | sha256sum | cut -c1-64 |
        tr a-f A-F | sed 's/../&:/g; s/:$//'
}

served=""
presents_certificate() {
    want=$(leaf_base64 2>/dev/null <"$cert_file")
    if [ -z "$want" ]; then
        served="cannot read a certificate from $cert_file"
        return 1
    fi
    # No trust store: nothing is verified here but the certificate itself,
    # and loading the system's CA bundle is most of what s_client costs.
    got=$(timeout 10 openssl s_client -no-CAfile -no-CApath -no-CAstore \
        -starttls postgres -connect "$tls_connect" </dev/null 2>/dev/null |
        leaf_base64)
    if [ -z "$got" ]; then
        served="no TLS handshake with $tls_connect"
        return 1
    fi
    served=$(fingerprint "$got")
    [ "$got" = "$want" ] || {
        served="$tls_connect presents the certificate $served"
        served="$served, but $cert_file holds $(fingerprint "$want")"
        said=$(server_log 'SSL|certificate|private key')
        [ -z "$said" ] || served="$served (server log: $said)"
        return 1
    }
}

verify() {
    admin_connects "$1" || {
        problem="postgres cannot connect over $socket_dir: $reached"
        return 1
    }
    presents_certificate || {
        problem="TLS check failed: $served"
        return 1
    }
}

# Reload or restart ($1) the server. A reload is pg_ctl's signal to the
# server, as `systemctl reload` sends it through pg_ctlcluster, without the
# Perl program and systemctl around it (they cost the host five times the
# CPU); a restart goes through systemd, which owns the server's processes.
signal_server() {
    if [ "$1" = reload ]; then
        as_postgres "${server_binary%/*}/pg_ctl" reload -s \
            -D "${pid_file%/*}" 2>&1
    else
        systemctl "$1" "$service" 2>&1
    fi
}

# $1: reload or restart, $2: what went wrong.
roll_back() {
    [ -n "$swapped" ] || fail "$2; $back"
    restore || fail "$2; restoring the previous files failed too, fix them by hand"
    before=$(sql "$socket_dir" "$port" 'SELECT pg_conf_load_time()') || before=""
    [ "$1" = restart ] && before=""
    log_mark=$(stat -c %s "$log_file" 2>/dev/null || echo 0)
    out=$(signal_server "$1") || {
        said=$(server_log 'FATAL|PANIC')
        fail "$2; the previous files are back but PostgreSQL did not $1 with" \
            "them either: ${said:-$(one_line "$out")}"
    }
    verify "$before" ||
        fail "$2; the previous files are back and PostgreSQL was ${1}ed with" \
            "them, but $problem"
    fail "$2; $back; PostgreSQL was ${1}ed with the previous files"
}

if [ -n "$restart" ]; then
    action=restart
    say "restarting: $restart"
else
    action=reload
    say "reloading: no changed setting needs a restart"
fi
log_mark=$(stat -c %s "$log_file" 2>/dev/null || echo 0)
out=$(signal_server "$action") || {
    said=$(server_log 'FATAL|PANIC')
    roll_back "$action" \
        "PostgreSQL did not $action with $subject: ${said:-$(one_line "$out")}"
}

verify "$loaded" || roll_back "$action" "after the $action, $problem"
say "verified: postgres connects over $socket_dir; TLS on $tls_connect" \
    "presents ${cert_file##*/} (SHA-256 $served)"
for file in $swapped; do
    if [ -e "$file.pgf-previous" ]; then
        say "applied $file (the replaced version: ${file##*/}.pgf-previous)"
    else
        say "applied $file (new)"
    fi
done
