"""Servers shaped like the ones the service is deployed against (a managed
PostgreSQL such as Neon, PgBouncer, TLS), made by the test session itself.

Two session-scoped fixtures; both are plain objects (no event loop), so sync
and async tests use them alike:

``scram_cluster`` (:class:`ScramCluster`)
    An extra PostgreSQL 15 cluster made with ``pg_createcluster`` for this
    session and dropped at its end. It listens on 127.0.0.1 only, with TLS (a
    certificate for 127.0.0.1 and localhost, signed by a CA made for the
    session: ``ca_file``) and SCRAM-SHA-256 passwords. Roles:

    - ``todo``: LOGIN CREATEDB, owner of the databases ``create_database()``
      makes; its password (``password``) needs percent-encoding in a URL;
    - ``tls_only``: refused without TLS (``hostnossl ... reject``);
    - ``postgres``: superuser without a password, only over the Unix socket
      (``admin_url``; the test process runs as root, mapped to postgres).

``pgbouncer`` (:class:`PgBouncer`)
    Debian's pgbouncer (1.18 on Debian 12: no prepared-statement support) in
    front of that cluster, in ``pool_mode = transaction`` with its defaults
    otherwise: no ``ignore_startup_parameters``, no ``max_prepared_statements``.
    SCRAM to the client over plain TCP, TLS (``server_tls_sslmode = require``)
    and SCRAM to the server, with the roles' SCRAM secrets from pg_authid.

Use them with ``pytest_plugins = ["tests.pgservers"]`` in tests/conftest.py.
They need root, PostgreSQL 15 from Debian's postgresql-common and the
pgbouncer package (``make pgbouncer``). Example::

    async def test_list_through_pgbouncer(scram_cluster, pgbouncer):
        db = scram_cluster.create_database()
        conn = await asyncpg.connect(pgbouncer.url(db), statement_cache_size=0)
        ...
        tls = scram_cluster.url(db, sslmode="verify-full", sslrootcert=scram_cluster.ca_file)

PYTEST_DONT_REWRITE: this module has no test asserts, and the marker lets a
test module import it before pytest loads it as a plugin without a warning.

A session that dies without its teardown leaves a cluster, a pgbouncer and a
directory named ``todotest_*`` behind; the next session removes them (each
session holds a lock on its directory while it runs, so sessions running at
the same time leave each other's alone).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg import sql

from tests.launcher import free_port, wait_until

PG_VERSION = "15"
HOST = "127.0.0.1"
SOCKET_DIR = "/var/run/postgresql"
# Cluster names and the sessions' directories in the temp dir start with this.
PREFIX = "todotest_"
# Characters that must be percent-encoded in a URL's userinfo, "%" included.
TODO_PASSWORD = "p@ss:w/rd#1?%"
TLS_ONLY_PASSWORD = "tls-only-password"

CONF_ROOT = Path(f"/etc/postgresql/{PG_VERSION}")
DATA_ROOT = Path(f"/var/lib/postgresql/{PG_VERSION}")
PG_CREATECLUSTER = "/usr/bin/pg_createcluster"
PG_CTL = f"/usr/lib/postgresql/{PG_VERSION}/bin/pg_ctl"
PG_CTLCLUSTER = "/usr/bin/pg_ctlcluster"
PG_DROPCLUSTER = "/usr/bin/pg_dropcluster"
PG_LSCLUSTERS = "/usr/bin/pg_lsclusters"
PG_ISREADY = f"/usr/lib/postgresql/{PG_VERSION}/bin/pg_isready"


def postgres_url(
    host: str, port: int, database: str, user: str, password: str | None = None, **query: object
) -> str:
    """A ``postgresql://`` URL with every part percent-encoded, as libpq,
    psycopg and asyncpg read it; ``query`` adds parameters (``sslmode=...``)."""
    userinfo = quote(user, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    url = f"postgresql://{userinfo}@{host}:{port}/{quote(database, safe='')}"
    if query:
        url += "?" + urlencode({k: str(v) for k, v in query.items()}, quote_via=quote)
    return url


def _run(*cmd: str, timeout: float = 120, **kwargs: Any) -> str:
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited with {result.returncode}: {output}")
    return result.stdout


def _chown_postgres(path: Path, mode: int) -> None:
    shutil.chown(path, "postgres", "postgres")
    path.chmod(mode)


def write_certificates(ca_file: Path, cert_file: Path, key_file: Path) -> None:
    """A CA, and a server certificate it signs for 127.0.0.1 and localhost."""
    now = datetime.datetime.now(datetime.UTC)

    def builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )

    def usage(*allowed: str) -> x509.KeyUsage:
        names = (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        )
        return x509.KeyUsage(**{name: name in allowed for name in names})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "todo-api test CA")])
    ca = (
        builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage("key_cert_sign", "crl_sign"), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
    cert = (
        builder(name, ca_name, key)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage("digital_signature"), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


class ScramCluster:
    """A PostgreSQL cluster of this session: TLS, SCRAM, 127.0.0.1 only.

    Attributes: ``host``, ``port``, ``ca_file`` (PEM of the CA for
    ``sslmode=verify-full``), ``password`` (the ``todo`` role's), ``passwords``
    (role -> password, for ``todo`` and ``tls_only``), ``admin_url``
    (superuser over the Unix socket), ``name`` (the pg_lsclusters name),
    ``log_file`` (the server log) and ``workdir`` (this session's directory).
    """

    host = HOST
    version = PG_VERSION

    def __init__(self, name: str, port: int, workdir: Path) -> None:
        self.name = name
        self.port = port
        self.workdir = workdir
        self.ca_file = str(workdir / "ca.crt")
        self.password = TODO_PASSWORD
        self.passwords = {"todo": TODO_PASSWORD, "tls_only": TLS_ONLY_PASSWORD}
        self.admin_url = f"postgresql://postgres@/postgres?host={SOCKET_DIR}&port={port}"
        self.conf_dir = CONF_ROOT / name
        self.data_dir = DATA_ROOT / name
        self.log_file = Path(f"/var/log/postgresql/postgresql-{PG_VERSION}-{name}.log")
        self._lock: IO[str] | None = None

    def url(
        self, database: str, user: str = "todo", password: str | None = None, **query: object
    ) -> str:
        """URL of ``database`` over TCP as ``user``; ``password`` defaults to
        the role's (pass ``""`` for none); ``query`` adds e.g. ``sslmode``."""
        if password is None:
            password = self.passwords.get(user)
        return postgres_url(self.host, self.port, database, user, password, **query)

    def create_database(self, owner: str = "todo") -> str:
        """Make an empty database owned by ``owner``; return its (unique) name.
        It goes when the cluster is dropped at the end of the session."""
        name = f"todo_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(owner)
                )
            )
        return name

    def stop(self) -> None:
        """Stop the server (fast mode: open connections are cut)."""
        self._ctl("stop")

    def start(self) -> None:
        """Start the server; return once it accepts connections."""
        self._ctl("start")
        self.wait_ready()

    def restart(self) -> None:
        """Restart the server (open connections are cut); return once it
        accepts connections again."""
        self._ctl("restart")
        self.wait_ready()

    def is_ready(self) -> bool:
        result = subprocess.run(
            [PG_ISREADY, "-q", "-t", "1", "-h", self.host, "-p", str(self.port)],
            check=False,
            timeout=10,
        )
        return result.returncode == 0

    def wait_ready(self) -> None:
        wait_until(
            self.is_ready,
            f"PostgreSQL {PG_VERSION}/{self.name} did not accept connections on "
            f"{self.host}:{self.port} (see {self.log_file})",
        )

    def _ctl(self, action: str) -> None:
        # pg_ctl as `pg_ctlcluster` runs it, without the 2 s of fixed sleeps
        # pg_ctlcluster spends probing the server after every start.
        args = [PG_CTL, action, "-w", "-s", "-D", str(self.data_dir), "-l", str(self.log_file)]
        if action != "stop":
            args += ["-o", f'-c config_file="{self.conf_dir}/postgresql.conf"']
        if action != "start":
            args += ["-m", "fast"]
        try:
            _run(*args, user="postgres", group="postgres", extra_groups=[], cwd=self.data_dir)
        except RuntimeError as exc:
            with contextlib.suppress(OSError):
                exc.add_note(self.log_file.read_text(errors="replace")[-2000:])
            raise

    @classmethod
    def create(cls) -> ScramCluster:
        if os.geteuid() != 0 or not Path(PG_CREATECLUSTER).exists():
            pytest.fail(
                "tests/pgservers.py makes PostgreSQL clusters with pg_createcluster: "
                "run the tests as root on Debian with postgresql-15 installed",
                pytrace=False,
            )
        drop_leftovers()
        workdir, lock = _locked_workdir()
        cluster = cls(workdir.name, free_port(), workdir)
        cluster._lock = lock
        try:
            cluster._setup()
        except BaseException:
            cluster.drop()
            raise
        return cluster

    def _setup(self) -> None:
        conf = self.conf_dir
        settings = {
            "listen_addresses": self.host,
            "max_connections": "50",
            "shared_buffers": "16MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "password_encryption": "scram-sha-256",
            "ssl": "on",
            "ssl_cert_file": str(conf / "server.crt"),
            "ssl_key_file": str(conf / "server.key"),
        }
        _run(
            PG_CREATECLUSTER,
            "--start-conf=manual",
            "--locale=C.UTF-8",
            f"--port={self.port}",
            PG_VERSION,
            self.name,
            "--",
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--no-sync",
        )
        # Debian's postgresql.conf reads conf.d/*.conf last.
        (conf / "conf.d" / "todotest.conf").write_text(
            "".join(f"{name} = '{value}'\n" for name, value in settings.items())
        )
        write_certificates(Path(self.ca_file), conf / "server.crt", conf / "server.key")
        _chown_postgres(conf / "server.crt", 0o644)
        _chown_postgres(conf / "server.key", 0o600)
        (conf / "pg_ident.conf").write_text(
            "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME\nsuite      root             postgres\n"
            "suite      postgres         postgres\n"
        )
        (conf / "pg_hba.conf").write_text(
            "# TYPE    DATABASE  USER      ADDRESS       METHOD\n"
            "local     all       postgres                peer map=suite\n"
            f"hostnossl all       tls_only  {self.host}/32  reject\n"
            f"host      all       all       {self.host}/32  scram-sha-256\n"
        )
        self.start()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE todo LOGIN CREATEDB PASSWORD {}").format(
                    sql.Literal(TODO_PASSWORD)
                )
            )
            conn.execute(
                sql.SQL("CREATE ROLE tls_only LOGIN PASSWORD {}").format(
                    sql.Literal(TLS_ONLY_PASSWORD)
                )
            )

    def drop(self) -> None:
        """Drop the cluster and this session's directory (the fixture's teardown)."""
        try:
            _drop_cluster(self.name)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
            if self._lock is not None:
                self._lock.close()
                self._lock = None


class PgBouncer:
    """Debian's pgbouncer in front of a :class:`ScramCluster`, run by the session.

    Attributes: ``host``, ``port``, ``version`` (e.g. ``(1, 18, 0)``),
    ``ini_file`` and ``log_file`` (its configuration and its output).
    """

    host = HOST

    def __init__(self, cluster: ScramCluster) -> None:
        self.cluster = cluster
        self.port = free_port()
        self.version = pgbouncer_version()
        directory = cluster.workdir / "pgbouncer"
        self.ini_file = directory / "pgbouncer.ini"
        self.log_file = directory / "pgbouncer.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def url(
        self, database: str, user: str = "todo", password: str | None = None, **query: object
    ) -> str:
        """URL of ``database`` through pgbouncer as ``user``; ``password``
        defaults to the role's (pass ``""`` for none)."""
        if password is None:
            password = self.cluster.passwords.get(user)
        return postgres_url(self.host, self.port, database, user, password, **query)

    def start(self) -> None:
        """Start pgbouncer; return once it accepts connections."""
        if self._process is not None:
            return
        self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            [_pgbouncer_binary(), str(self.ini_file)],
            user="postgres",
            group="postgres",
            extra_groups=[],
            cwd=self.ini_file.parent,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Ctrl-C reaches pytest, whose teardown stops pgbouncer.
            start_new_session=True,
        )
        try:
            wait_until(self._listening, f"pgbouncer did not listen on {self.host}:{self.port}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop pgbouncer (its immediate shutdown: open connections are cut)."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start pgbouncer (same port); open connections are cut."""
        self.stop()
        self.start()

    def _listening(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            log = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pgbouncer exited with {self._process.returncode}:\n{log}")
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    @classmethod
    def create(cls, cluster: ScramCluster) -> PgBouncer:
        bouncer = cls(cluster)
        directory = bouncer.ini_file.parent
        directory.mkdir(mode=0o700)
        _chown_postgres(directory, 0o700)
        with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
            secrets = conn.execute(
                "SELECT rolname, rolpassword FROM pg_authid"
                " WHERE rolname = ANY(%s) ORDER BY rolname",
                [list(cluster.passwords)],
            ).fetchall()
        auth_file = directory / "userlist.txt"
        auth_file.write_text("".join(f'"{name}" "{secret}"\n' for name, secret in secrets))
        bouncer.ini_file.write_text(
            "[databases]\n"
            f"* = host={cluster.host} port={cluster.port}\n"
            "\n"
            "[pgbouncer]\n"
            f"listen_addr = {bouncer.host}\n"
            f"listen_port = {bouncer.port}\n"
            f"unix_socket_dir = {directory}\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {auth_file}\n"
            "pool_mode = transaction\n"
            "server_tls_sslmode = require\n"
        )
        for path in (auth_file, bouncer.ini_file):
            _chown_postgres(path, 0o600)
        bouncer.log_file.touch(mode=0o600)
        bouncer.start()
        return bouncer


def _pgbouncer_binary() -> str:
    path = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if path is None:
        pytest.fail("pgbouncer is not installed: run `make pgbouncer` as root", pytrace=False)
    return path


def pgbouncer_version() -> tuple[int, ...]:
    """The installed pgbouncer's version, e.g. (1, 18, 0)."""
    output = _run(_pgbouncer_binary(), "--version")
    match = re.search(r"PgBouncer (\d+(?:\.\d+)*)", output)
    if match is None:
        raise RuntimeError(f"unexpected `pgbouncer --version` output: {output!r}")
    return tuple(int(part) for part in match.group(1).split("."))


# A session's directory, <tempdir>/todotest_<hex>, holds its files and a lock
# file the session keeps locked (flock) while it runs. The directory appears
# with the lock already held (made under a hidden name, then renamed), before
# the cluster of the same name is made, and goes after the cluster is dropped.
# So a todotest_* cluster, directory or pgbouncer whose lock can be taken, or
# whose directory is gone, belongs to a session that is no more.


def _locked_workdir() -> tuple[Path, IO[str]]:
    tmp = Path(tempfile.gettempdir())
    name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
    staging = tmp / f".{name}"
    staging.mkdir(mode=0o755)
    staging.chmod(0o755)  # pgbouncer, run as postgres, reads its files below it
    lock = (staging / "lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    staging.rename(tmp / name)
    return tmp / name, lock


def _abandoned(workdir: Path) -> bool:
    try:
        with (workdir / "lock").open() as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
    except OSError:
        return True


def _clusters() -> set[str]:
    lines = _run(PG_LSCLUSTERS, "--no-header").splitlines()
    return {
        fields[1]
        for fields in (line.split() for line in lines)
        if len(fields) > 1 and fields[0] == PG_VERSION and fields[1].startswith(PREFIX)
    }


def _drop_cluster(name: str) -> None:
    if name in _clusters():
        with contextlib.suppress(RuntimeError):  # already stopped
            _run(PG_CTLCLUSTER, "--skip-systemctl-redirect", PG_VERSION, name, "stop")
        _run(PG_DROPCLUSTER, "--stop", PG_VERSION, name)
    # pg_dropcluster leaves the files it did not make (the certificate and key,
    # conf.d/todotest.conf), and a cluster pg_createcluster did not finish.
    for root in (CONF_ROOT, DATA_ROOT):
        shutil.rmtree(root / name, ignore_errors=True)


def _pgbouncers() -> Iterator[tuple[int, str]]:
    """(pid, session name) of every running pgbouncer a session started."""
    pattern = re.compile(rf"{re.escape(tempfile.gettempdir())}/({PREFIX}[0-9a-f]+)/")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name != "pgbouncer":
            continue
        for arg in argv[1:]:
            if match := pattern.match(arg):
                yield int(proc.name), match.group(1)


def drop_leftovers() -> None:
    """Remove what sessions that died without their teardown left behind."""
    tmp = Path(tempfile.gettempdir())
    dead = {d.name for d in tmp.glob(f"{PREFIX}*") if d.is_dir() and _abandoned(d)}
    clusters = {path.name for root in (CONF_ROOT, DATA_ROOT) for path in root.glob(f"{PREFIX}*")}
    dead |= {name for name in clusters if not (tmp / name).exists()}
    for pid, name in _pgbouncers():
        if name in dead:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for name in sorted(dead & clusters):
        with contextlib.suppress(RuntimeError):  # another session got there first
            _drop_cluster(name)
    for name in dead:
        shutil.rmtree(tmp / name, ignore_errors=True)


@pytest.fixture(scope="session")
def scram_cluster() -> Iterator[ScramCluster]:
    """This session's PostgreSQL 15 cluster with TLS and SCRAM (see the module doc)."""
    cluster = ScramCluster.create()
    try:
        yield cluster
    finally:
        cluster.drop()


@pytest.fixture(scope="session")
def pgbouncer(scram_cluster: ScramCluster) -> Iterator[PgBouncer]:
    """This session's pgbouncer in transaction mode in front of ``scram_cluster``."""
    bouncer = PgBouncer.create(scram_cluster)
    try:
        yield bouncer
    finally:
        bouncer.stop()
