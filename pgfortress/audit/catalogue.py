"""The controls an audit reports on: CIS PostgreSQL 15 Benchmark and dev-sec baseline.

Every recommendation of the CIS PostgreSQL 15 Benchmark (its numbering) and
every control of dev-sec's postgres-baseline (``postgres-01`` to
``postgres-20``) has one entry. Titles are pgfortress's own wording. An entry
either expects host checks (they name it with ``@pytest.mark.control``) or
says why no check exists: the control does not apply to a pgfortress host, or
pgfortress neither enforces nor checks it.

Where the dev-sec baseline expects something pgfortress deliberately does
otherwise (its older releases want ``ssl = off`` and md5 passwords), the entry
carries a ``deviation`` that the reports print next to the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ._errors import AuditError

__all__ = ["CATALOGUE", "Control", "Coverage", "control", "coverage"]


class Coverage(Enum):
    """How pgfortress answers a control."""

    CHECKED = "checked"
    NOT_APPLICABLE = "not applicable"
    NOT_COVERED = "not covered"


@dataclass(frozen=True)
class Control:
    """One recommendation, as ``cis:<number>`` or ``devsec:<id>``."""

    id: str
    title: str
    coverage: Coverage = Coverage.CHECKED
    reason: str = ""
    deviation: str = ""

    @property
    def framework(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def number(self) -> str:
        return self.id.split(":", 1)[1]


_C = Coverage.CHECKED
_NA = Coverage.NOT_APPLICABLE
_NC = Coverage.NOT_COVERED

_COLLECTOR_OFF = (
    "the logging collector is off: Debian's pg_ctlcluster writes the server log "
    "to /var/log/postgresql and logrotate rotates it, so this setting has no effect"
)
_NO_SYSLOG = "the server does not log to syslog (log_destination is stderr)"
_NO_REPLICATION = "pgfortress deploys a single server without replication"


def _cis(number: str, title: str, coverage: Coverage = _C, reason: str = "") -> Control:
    return Control(f"cis:{number}", title, coverage, reason)


def _devsec(
    number: int,
    title: str,
    coverage: Coverage = _C,
    reason: str = "",
    deviation: str = "",
) -> Control:
    return Control(f"devsec:postgres-{number:02d}", title, coverage, reason, deviation)


_CIS = (
    _cis("1.1", "PostgreSQL packages come from an authorised archive"),
    _cis("1.2", "the server runs as an enabled systemd service"),
    _cis("1.3", "the data cluster was initialised and is online"),
    _cis(
        "2.1",
        "the postgres account's file-creation mask is restrictive",
        _NC,
        "pgfortress does not change the postgres account's umask; the data "
        "directory's own mode is checked under devsec:postgres-20",
    ),
    _cis(
        "2.2",
        "membership of a pg_wheel group for superuser access is controlled",
        _NA,
        "pgfortress creates no pg_wheel group: the superuser is reached only "
        "as root through runuser and peer authentication on the socket",
    ),
    _cis("3.1.2", "the server log goes to a known destination"),
    _cis(
        "3.1.3",
        "the logging collector is on",
        _NC,
        "pgfortress keeps Debian's stderr logging through pg_ctlcluster",
    ),
    _cis("3.1.4", "the log directory is set", _NA, _COLLECTOR_OFF),
    _cis("3.1.5", "log file names carry a time pattern", _NA, _COLLECTOR_OFF),
    _cis("3.1.6", "log files are readable only by the server and admins"),
    _cis("3.1.7", "rotation truncates old log files", _NA, _COLLECTOR_OFF),
    _cis("3.1.8", "log files rotate after a bounded age", _NA, _COLLECTOR_OFF),
    _cis("3.1.9", "log files rotate after a bounded size", _NA, _COLLECTOR_OFF),
    _cis("3.1.10", "the syslog facility is chosen deliberately", _NA, _NO_SYSLOG),
    _cis("3.1.11", "syslog messages are not collapsed", _NA, _NO_SYSLOG),
    _cis("3.1.12", "long syslog messages are split, not lost", _NA, _NO_SYSLOG),
    _cis(
        "3.1.13", "syslog messages carry a recognisable program name", _NA, _NO_SYSLOG
    ),
    _cis(
        "3.1.14",
        "the server log records messages of the right severity",
        _NC,
        "pgfortress leaves log_min_messages at PostgreSQL's default and does not "
        "check it",
    ),
    _cis(
        "3.1.15",
        "statements that cause errors are logged",
        _NC,
        "pgfortress leaves log_min_error_statement at PostgreSQL's default and does "
        "not check it",
    ),
    _cis("3.1.16", "parse trees are not dumped to the log"),
    _cis("3.1.17", "rewritten query trees are not dumped to the log"),
    _cis("3.1.18", "execution plans are not dumped to the log"),
    _cis("3.1.19", "any debug dumps are indented for reading"),
    _cis("3.1.20", "every connection attempt is logged"),
    _cis("3.1.21", "every session end is logged"),
    _cis(
        "3.1.22",
        "log messages carry the chosen level of detail",
        _NC,
        "pgfortress leaves log_error_verbosity at PostgreSQL's default and does not "
        "check it",
    ),
    _cis("3.1.23", "client host names are not resolved for the log"),
    _cis("3.1.24", "each log line starts with time, process, user, database, client"),
    _cis("3.1.25", "the statements the policy names are logged"),
    _cis(
        "3.1.26",
        "log time stamps use the chosen time zone",
        _NC,
        "pgfortress keeps the time zone the cluster was created with",
    ),
    _cis(
        "3.2",
        "the pgAudit extension records session and object activity",
        _NA,
        "pgfortress does not deploy pgAudit; statement logging comes from "
        "log_statement (cis:3.1.25)",
    ),
    _cis(
        "4.1",
        "sudo grants access to the postgres account only to authorised people",
        _NC,
        "sudo is configured outside pgfortress; administrators work as root over SSH",
    ),
    _cis("4.2", "no database role holds administrative powers it does not need"),
    _cis(
        "4.3",
        "functions do not grant more than needed (SECURITY DEFINER, EXECUTE)",
        _NC,
        "functions belong to the application's SQL; pgfortress revokes EXECUTE "
        "from PUBLIC on future functions but does not check existing ones",
    ),
    _cis("4.4", "PUBLIC holds no data-changing privileges"),
    _cis(
        "4.5",
        "row-level security is set up where tables need it",
        _NC,
        "row-level security is part of the application's schema",
    ),
    _cis(
        "4.6",
        "the set_user extension guards switches to the superuser",
        _NA,
        "pgfortress does not deploy set_user: nobody switches to the superuser "
        "from a login database role",
    ),
    _cis(
        "4.7",
        "predefined roles are used instead of superuser rights",
        _NC,
        "database roles come from the operator's spec; pgfortress does not judge "
        "which predefined roles they should use",
    ),
    _cis("5.1", "logins over the unix socket are configured correctly"),
    _cis("5.2", "logins over TCP/IP are configured correctly"),
    _cis(
        "5.3",
        "passwords must meet a complexity rule",
        _NA,
        "pgfortress generates long random passwords and sends only SCRAM "
        "verifiers, which a server-side complexity check cannot inspect",
    ),
    _cis(
        "6.1",
        "runtime parameters are understood as an attack surface",
        _NA,
        "a reading recommendation with nothing on the host to check",
    ),
    _cis(
        "6.2",
        "backend-start parameters are set correctly",
        _NC,
        "pgfortress leaves backend-context parameters at their defaults",
    ),
    _cis("6.3", "postmaster parameters (addresses, port, socket) are set correctly"),
    _cis("6.4", "reloadable (SIGHUP) parameters are set correctly"),
    _cis("6.5", "superuser-context parameters are set correctly"),
    _cis(
        "6.6",
        "user-context parameters are set correctly",
        _NC,
        "per-role settings come from the database roles spec and are checked there",
    ),
    _cis(
        "6.7",
        "OpenSSL runs in a FIPS 140-2 validated mode",
        _NC,
        "Debian's OpenSSL is not built in FIPS mode",
    ),
    _cis("6.8", "TLS is on with a trusted certificate and a private key"),
    _cis(
        "6.9",
        "the pgcrypto extension is installed where data needs it",
        _NC,
        "column encryption is part of the application's schema",
    ),
    _cis(
        "7.1",
        "streaming replication uses a replication-only database role",
        _NA,
        _NO_REPLICATION,
    ),
    _cis("7.2", "replication commands are logged", _NA, _NO_REPLICATION),
    _cis(
        "7.3",
        "base backups are taken and work",
        _NC,
        "backups are outside pgfortress's scope",
    ),
    _cis(
        "7.4",
        "WAL archiving is configured and works",
        _NC,
        "backups are outside pgfortress's scope",
    ),
    _cis(
        "7.5",
        "streaming replication parameters are set correctly",
        _NA,
        _NO_REPLICATION,
    ),
    _cis(
        "8.1",
        "tablespaces and WAL live outside the data directory",
        _NC,
        "pgfortress keeps Debian's layout and creates no tablespace",
    ),
    _cis(
        "8.2",
        "pgBackRest is installed and configured for backup and restore",
        _NC,
        "backups are outside pgfortress's scope",
    ),
    _cis(
        "8.3",
        "miscellaneous settings (e.g. dynamic libraries) are set correctly",
        _NC,
        "pgfortress loads no extra libraries and does not check the rest",
    ),
)

_DEVSEC = (
    _devsec(1, "PostgreSQL is installed, running and enabled"),
    _devsec(
        2,
        "a supported, released PostgreSQL version is in use",
        deviation="the baseline's version pattern stops at 13; pgfortress accepts "
        "any major version still supported upstream (13 and later), never a "
        "beta, release candidate or development build",
    ),
    _devsec(3, "one PostgreSQL server runs per operating system"),
    _devsec(4, "only c and internal are untrusted procedural languages"),
    _devsec(5, "no procedural language beyond the defaults is installed"),
    _devsec(
        6,
        "every database role that logs in has a password",
        deviation="the bootstrap superuser postgres has no password on purpose: it "
        "logs in only by peer authentication on the unix socket and is refused "
        "over TCP, so a password would only add something to steal",
    ),
    _devsec(
        7,
        "passwords are stored as salted hashes",
        deviation="older baseline releases expect md5 hashes; md5 is unsalted "
        "in practice (the salt is the role name) and replayable, so pgfortress "
        "requires SCRAM-SHA-256 verifiers and password_encryption = scram-sha-256",
    ),
    _devsec(
        8,
        "only the administrator holds SUPERUSER, CREATEDB or CREATEROLE",
    ),
    _devsec(9, "only the administrator can read pg_authid"),
    _devsec(
        10,
        "configuration directory and files belong to the database account only",
        deviation="pg_hba.conf is 0640 postgres:postgres and the TLS directory "
        "0750 root:postgres (the baseline wants no group access): the group is "
        "postgres itself, and root owning the TLS directory keeps the server "
        "from replacing its own key",
    ),
    _devsec(
        11,
        "TLS is on for client connections",
        deviation="older baseline releases expect ssl = off (they could not ship "
        "certificates); pgfortress requires ssl = on with a certificate from its "
        "own or the operator's CA, never Debian's self-signed snakeoil pair",
    ),
    _devsec(
        12,
        "only strong TLS ciphers are offered",
        deviation="the baseline pins 'ALL:!ADH:!LOW:!EXP:!MD5:@STRENGTH', which "
        "still allows CBC and SHA-1 suites; pgfortress allows only ECDHE with "
        "AES-GCM or ChaCha20 and TLS 1.2 at least",
    ),
    _devsec(
        13,
        "logins over the unix socket use peer authentication",
        deviation="older baseline releases require md5 on local lines; pgfortress "
        "lets the administrator in by peer and rejects every other local login",
    ),
    _devsec(
        14,
        "only strong authentication methods are used for TCP logins",
        deviation="older baseline releases require md5 on hostssl lines; "
        "pgfortress accepts scram-sha-256, cert and ldap (over TLS) and rejects "
        "the rest",
    ),
    _devsec(
        15,
        "no TCP login is possible without TLS",
        deviation="the baseline refuses any 'host' line; pgfortress writes 'host' "
        "lines that only reject (the superuser and everything not named), which "
        "is what the control is after",
    ),
    _devsec(
        16,
        "connection logging is on",
        deviation="the baseline also wants the logging collector, log_hostname, "
        "log_duration and the prefix '%t %u %d %h'; pgfortress keeps Debian's "
        "log file, does not resolve client names (slow, and names are chosen by "
        "whoever controls the client's DNS), does not log every statement's "
        "duration, and uses a prefix with milliseconds, the process, the "
        "application and the client's port",
    ),
    _devsec(17, "no table privileges are granted to PUBLIC"),
    _devsec(18, "no privilege is granted WITH GRANT OPTION"),
    _devsec(
        19,
        "SECURITY DEFINER functions are avoided",
        _NC,
        "functions belong to the application's SQL; pgfortress does not check them",
    ),
    _devsec(
        20,
        "data and log directories belong to the database account only",
        deviation="Debian's /var/log/postgresql is root:postgres 1775 (logrotate "
        "and pg_ctlcluster need it); pgfortress checks the data directory and "
        "the server's log file instead of the shared directory",
    ),
)

CATALOGUE: tuple[Control, ...] = _CIS + _DEVSEC
_BY_ID = {entry.id: entry for entry in CATALOGUE}


def control(control_id: str) -> Control:
    """The catalogue entry of ``control_id``, or an error saying how ids look."""
    try:
        return _BY_ID[control_id]
    except KeyError:
        raise AuditError(
            f"{control_id!r} is not a control of the catalogue; ids look like "
            "'cis:3.1.20' (CIS PostgreSQL 15 Benchmark) or 'devsec:postgres-07'"
        ) from None


def coverage(covered: set[str]) -> tuple[int, int, float]:
    """(controls with a passing-capable check, all controls, percentage).

    ``covered`` is the set of ids that at least one host check names.
    """
    checked = sum(1 for entry in CATALOGUE if entry.id in covered)
    total = len(CATALOGUE)
    return checked, total, round(100 * checked / total, 1)
