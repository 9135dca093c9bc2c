"""A throwaway PostgreSQL server for the tests: a private cluster in a temporary directory.

The cluster is initialised and run as the ``postgres`` OS user when the tests run as root (the
server refuses to run as root), listens only on 127.0.0.1 on a free port, trusts local
connections, and is stopped and removed when the session ends. ``SALESOPS_TEST_POSTGRES_URL``
(a SQLAlchemy or libpq URL of a database the tests may write to) uses a server of your own
instead. Its collation should be ``C`` (byte order), like DuckDB's, for string orderings
(``record_ids`` lists, tie-breaks) to agree.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

URL_VARIABLE = "SALESOPS_TEST_POSTGRES_URL"
DATABASE = "salesops"
USER = "salesops"
BIN_GLOB = "/usr/lib/postgresql/*/bin"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver)."""
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq connection string, for psycopg.connect; sessions in UTC, whatever the server's zone."""
        parts = [f"host={self.host}", f"port={self.port}", f"user={self.user}", f"dbname={self.database}"]
        if self.password:
            parts.append(f"password={self.password}")
        parts.append("options='-c timezone=UTC'")
        return " ".join(parts)

    def dbt_env(self) -> dict[str, str]:
        """The environment the dbt ``postgres`` target reads (dbt_project/profiles.yml); PGTZ makes
        libpq start dbt's sessions in UTC (the profile has no session options)."""
        return {
            "PGTZ": "UTC",
            "SALESOPS_PG_HOST": self.host,
            "SALESOPS_PG_PORT": str(self.port),
            "SALESOPS_PG_USER": self.user,
            "SALESOPS_PG_PASSWORD": self.password,
            "SALESOPS_PG_DATABASE": self.database,
        }


def server_from_url(url: str) -> PostgresServer:
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"{URL_VARIABLE} must be a postgresql:// URL")
    return PostgresServer(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or "postgres",
    )


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian layout); fails if there is none."""
    found = sorted(
        (Path(p) for p in glob.glob(BIN_GLOB) if (Path(p) / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise RuntimeError(
            f"PostgreSQL server binaries not found ({BIN_GLOB}/initdb): install Debian's postgresql "
            f"package (apt-get install postgresql; .ci/run does) or set {URL_VARIABLE} to a server's URL"
        )
    return found[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres_user(command: list[str]) -> list[str]:
    """Root can't run the server: run it as the postgres OS user."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in command)]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(_as_postgres_user(command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def _wait_until_ready(bin_dir: Path, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not accept connections on 127.0.0.1:{port} within {timeout:.0f}s")


@contextmanager
def private_cluster() -> Iterator[PostgresServer]:
    """initdb a cluster into a temporary directory, start it on 127.0.0.1, create the test database;
    stop and remove it afterwards."""
    bin_dir = postgres_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="salesops-pg-"))
    data_dir, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(socket_dir, "postgres")
    port = free_port()
    started = False
    try:
        # C collation (byte order, as DuckDB compares strings) with UTF-8 character classes
        # (lower()/upper() of non-ASCII letters, as DuckDB).
        _run(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", USER, "--auth=trust", "--encoding=UTF8",
             "--lc-collate=C", "--lc-ctype=C.UTF-8", "--lc-messages=C", "--no-sync"],
            "initdb",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c timezone=UTC "
            "-c max_connections=40 -c shared_buffers=64MB"
        )
        _run(
            [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(root / "server.log"),
             "-w", "-t", "60", "start"],
            "pg_ctl start",
        )  # fmt: skip
        started = True
        _wait_until_ready(bin_dir, port)
        _run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-T", "template0",
             "-E", "UTF8", "--lc-collate=C", "--lc-ctype=C.UTF-8", DATABASE],
            "createdb",
        )  # fmt: skip
        yield PostgresServer("127.0.0.1", port, USER, "", DATABASE)
    finally:
        if started:
            subprocess.run(
                _as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"]),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """The server the tests use: ``SALESOPS_TEST_POSTGRES_URL`` if set, else a private cluster."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield server_from_url(url)
        return
    with private_cluster() as server:
        yield server


def fresh_database(server: PostgresServer, name: str) -> PostgresServer:
    """(Re)create database ``name`` on the server, empty, with C collation; the server pointing at it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        create = "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE {}"
        try:
            connection.execute(sql.SQL(create).format(sql.Identifier(name), sql.Literal("C.UTF-8")))
        except psycopg.errors.Error:  # a server without the C.UTF-8 locale
            connection.execute(sql.SQL(create).format(sql.Identifier(name), sql.Literal("C")))
    return PostgresServer(server.host, server.port, server.user, server.password, name)


@dataclass(frozen=True)
class DbtInvocation:
    args: list[str]
    returncode: int
    output: str

    @property
    def success(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run_dbt(
    target: str, dbt_args: list[str], work_dir: Path, env: dict[str, str], as_of: str
) -> DbtInvocation:
    """``dbt <args> --target <target>`` on the project, with the vars the pipeline passes
    (orchestration/assets/dbt.py) and its own target and log paths (the pipeline's manifests in
    dbt_project/target are left alone)."""
    import json
    import sys

    from orchestration.settings import DBT_PROJECT_DIR

    work_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(Path(sys.executable).with_name("dbt")), *dbt_args, "--target", target,
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs"),
        "--vars", json.dumps({"as_of": as_of}), "--no-use-colors",
    ]  # fmt: skip
    environment = {**os.environ, **env, "SALESOPS_AS_OF": as_of, "SALESOPS_DBT_TARGET": target}
    done = subprocess.run(
        args, cwd=DBT_PROJECT_DIR, env=environment, capture_output=True, text=True, check=False, timeout=900
    )
    return DbtInvocation(args, done.returncode, done.stdout + done.stderr)


def run_dbt_on_postgres(
    server: PostgresServer, as_of: str, work_dir: Path, env: dict[str, str] | None = None
) -> DbtInvocation:
    """``dbt build --target postgres`` into the server's database, as the nightly job builds."""
    return run_dbt("postgres", ["build"], work_dir, {**(env or {}), **server.dbt_env()}, as_of)
