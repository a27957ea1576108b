# Load the pgfortress firewall with a dead-man switch, confirm it, or roll it
# back. pgfortress prepends the values used below (host, mode, rules_file,
# conf_file, include_line, state_file, confirm_seconds, unit, table) and
# runs one of three modes:
#
#   load     check the candidate (<rules_file>.pgf-candidate, or the live file
#            when no candidate waits) alone and inside the boot configuration,
#            keep the running table, arm a rollback timer, load the candidate
#            into the running ruleset in one transaction. No file changes.
#   confirm  (run after the deploy proved a new SSH connection gets in) stop
#            the timer, move the candidate into place, add the include line to
#            the boot configuration, check it, enable the nftables service and
#            record what is loaded.
#   rollback put the running table back as it was before "load", now.
#
# Lines on stdout start with "pgfortress: "; a failure exits 1 with one line
# on stderr that names the host.

trap '' HUP PIPE

say() { printf 'pgfortress: %s\n' "$*"; }
fail() { printf 'pgfortress: %s: %s\n' "$host" "$*" >&2; exit 1; }
one_line() { printf '%s' "$1" | tr '\n' ' '; }

work=/run/pgfortress/firewall
candidate="$rules_file.pgf-candidate"
rollback_script="$work/rollback.sh"

exec 9>/run/lock/pgfortress-firewall.lock
flock -w 300 9 || fail "another pgfortress run held the firewall lock for 5 minutes"
install -d -m 0700 "$work" || fail "cannot create $work"

# The boot configuration as it will be, with the include of $1 in place of
# (or after) the include of the live rules file.
boot_config() {
    if [ -f "$conf_file" ]; then
        if grep -Fxq "$include_line" "$conf_file"; then
            sed "s|^include \"$rules_file\"\$|include \"$1\"|" "$conf_file"
        else
            cat "$conf_file"
            printf '\ninclude "%s"\n' "$1"
        fi
    else
        printf '#!/usr/sbin/nft -f\n\ninclude "%s"\n' "$1"
    fi
}

live_digest() {
    nft -s list table $table 2>/dev/null | sha256sum | cut -d ' ' -f 1
}

if [ "$mode" = rollback ]; then
    [ -f "$rollback_script" ] || fail "no rollback is prepared"
    systemctl stop "$unit.timer" 2>/dev/null
    sh "$rollback_script" || fail "rolling the firewall back failed"
    say "rolled back: the firewall is as it was before this run"
    exit 0
fi

if [ "$mode" = load ]; then
    source_file="$candidate"
    [ -f "$source_file" ] || source_file="$rules_file"
    [ -f "$source_file" ] || fail "neither $candidate nor $rules_file exists"
    out=$(nft -c -f "$source_file" 2>&1) || {
        [ "$source_file" = "$candidate" ] && mv -f "$candidate" "$rules_file.pgf-rejected"
        fail "nft rejects the new ruleset: $(one_line "$out"); nothing was loaded" \
            "(the file is kept as ${rules_file##*/}.pgf-rejected)"
    }
    boot_config "$source_file" >"$work/boot-check.nft"
    out=$(nft -c -f "$work/boot-check.nft" 2>&1) || {
        [ "$source_file" = "$candidate" ] && mv -f "$candidate" "$rules_file.pgf-rejected"
        fail "$conf_file with the new ruleset included does not load:" \
            "$(one_line "$out"); nothing was loaded"
    }

    # What runs now, to be put back if the deploy cannot confirm in time;
    # unless an earlier run loaded a ruleset and was cut off before its
    # confirmation: its rollback, to the table before it, stays prepared.
    if systemctl is-active -q "$unit.timer" && [ -f "$rollback_script" ]; then
        say "an earlier run was not confirmed; its rollback stays prepared"
    else
        if nft -s list table $table >"$work/previous.nft" 2>/dev/null; then
            {
                printf 'table %s\ndelete table %s\n' "$table" "$table"
                cat "$work/previous.nft"
            } >"$work/restore.nft"
            restore="nft -f $work/restore.nft"
        else
            restore="nft delete table $table 2>/dev/null; true"
        fi
        cat >"$rollback_script" <<EOF
$restore || exit 1
[ -f "$candidate" ] && mv -f "$candidate" "$rules_file.pgf-rejected"
logger -t pgfortress "firewall: not confirmed within $confirm_seconds s, rolled back"
exit 0
EOF
    fi
    systemctl stop "$unit.timer" 2>/dev/null
    systemctl reset-failed "$unit.service" "$unit.timer" 2>/dev/null
    # A timer fires up to AccuracySec late, one minute unless told otherwise.
    out=$(systemd-run --quiet --unit="$unit" --on-active="$confirm_seconds" \
        --timer-property=AccuracySec=1s /bin/sh "$rollback_script" 2>&1) ||
        fail "cannot arm the rollback timer: $(one_line "$out"); nothing was loaded"

    out=$(nft -f "$source_file" 2>&1) || {
        systemctl stop "$unit.timer" 2>/dev/null
        sh "$rollback_script"
        fail "nft could not load the ruleset: $(one_line "$out"); the previous" \
            "one runs"
    }
    say "loaded the firewall; it rolls back in $confirm_seconds s unless confirmed"
    exit 0
fi

[ "$mode" = confirm ] || fail "unknown mode $mode"
systemctl is-active -q "$unit.timer" || fail "the rollback timer already fired" \
    "or was never armed: the firewall was rolled back; nothing was confirmed"
systemctl stop "$unit.timer" || fail "cannot stop the rollback timer"

# Put the files and the running table back as they were before "load".
swapped=""
undo() {
    if [ -n "$swapped" ]; then
        if [ -f "$rules_file.pgf-previous" ]; then
            ln -f "$rules_file" "$rules_file.pgf-rejected"
            ln -f "$rules_file.pgf-previous" "$rules_file.pgf-restore"
            mv -f "$rules_file.pgf-restore" "$rules_file"
        else
            mv -f "$rules_file" "$rules_file.pgf-rejected"
        fi
    fi
    if [ -f "$work/conf.previous" ]; then
        cp -p "$work/conf.previous" "$conf_file"
    fi
    sh "$rollback_script"
}
if [ -f "$candidate" ]; then
    if [ -f "$rules_file" ]; then
        ln -f "$rules_file" "$rules_file.pgf-previous"
    else
        rm -f "$rules_file.pgf-previous"
    fi
    swapped=yes
    mv -f "$candidate" "$rules_file" || {
        undo
        fail "cannot move $candidate into place; the previous firewall runs"
    }
fi
rm -f "$work/conf.previous"
if ! [ -f "$conf_file" ] || ! grep -Fxq "$include_line" "$conf_file"; then
    [ -f "$conf_file" ] && cp -p "$conf_file" "$work/conf.previous"
    boot_config "$rules_file" >"$conf_file.pgf-candidate" &&
        chmod 0755 "$conf_file.pgf-candidate" &&
        mv -f "$conf_file.pgf-candidate" "$conf_file" || {
        undo
        fail "cannot add the include line to $conf_file; the previous firewall runs"
    }
    say "added to $conf_file: $include_line"
fi
out=$(nft -c -f "$conf_file" 2>&1) || {
    undo
    fail "$conf_file does not load: $(one_line "$out"); the previous firewall runs"
}
systemctl enable --quiet nftables.service 2>/dev/null ||
    fail "cannot enable nftables.service: the rules would not come back at boot"
install -d -m 0755 "${state_file%/*}"
live_digest >"$state_file"
rm -f "$rollback_script" "$work/previous.nft" "$work/restore.nft"
say "confirmed: a new connection reached sshd; the firewall is live and loads at boot"
