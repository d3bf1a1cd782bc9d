"""Throwaway PostgreSQL and Redis servers for the test run.

When no database or Redis URL is given, the test session starts its own servers from the system's binaries,
points the code under test at them and removes them afterwards. Each server lives in its own temporary
directory, listens on 127.0.0.1 on a free port and is stopped even when the test body raises.

Two shapes of each helper:

* ``throwaway_postgres()`` / ``throwaway_redis()`` yield just the URL; that is all most fixtures need.
* ``throwaway_postgres_server()`` / ``throwaway_redis_server()`` yield the server object, whose
  ``stop()``, ``start()``, ``restart()`` and ``kill()`` let fault tests take the service away and bring it
  back on the same port (and, for PostgreSQL, the same data directory).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "create_database",
    "drop_database",
    "free_port",
    "throwaway_postgres",
    "throwaway_postgres_server",
    "throwaway_redis",
    "throwaway_redis_server",
]

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_POLL_INTERVAL_S = 0.05
_LOG_TAIL_LINES = 40


class ServiceError(RuntimeError):
    """A throwaway server could not be set up, started or stopped."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is listening on right now.

    The kernel picks it, so it comes from the ephemeral range; another process could still take it before the
    server binds, which is rare enough that start-up simply reports it as a failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- process plumbing shared by both servers -------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


# Loaded once in the parent: the pre-exec hook runs between fork and exec, where importing or loading
# libraries is unsafe.
_LIBC = _libc()


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A pre-exec hook so that the server gets ``sig`` if the test process dies without cleaning up.

    ``finally`` blocks cover exceptions and Ctrl-C; this covers a test run killed outright (CI timeouts,
    SIGKILL), which would otherwise leave servers running. Linux only; elsewhere it is simply skipped.
    It must run after the switch to the server user, because a change of credentials clears the setting;
    Popen calls the hook after that switch.
    """
    libc = _LIBC
    if libc is None or not hasattr(libc, "prctl"):
        return None

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return hook


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _Server:
    """One server process in its own temporary directory; subclasses say how to launch, ping and stop it."""

    name = "server"
    # Signal that asks the server for a clean, quick shutdown; also sent if the test process dies.
    stop_signal = signal.SIGTERM
    # Account to run the server as (PostgreSQL under root); None runs it as ourselves.
    run_as: pwd.struct_passwd | None = None

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"veil-{self.name}-", dir=base_dir))
        self.port = port if port is not None else free_port()
        self.log_path = self.dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    # Subclass hooks ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ping(self) -> None:
        """Return if the server answers; raise any exception if it does not (yet)."""
        raise NotImplementedError

    def _request_stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(self.stop_signal)

    # Public API ----------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the running server process, or None when it is stopped."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (again) on the same port and directory and wait until it answers."""
        if self.running:
            raise ServiceError(f"{self.name} on port {self.port} is already running")
        # Append, so a restart keeps the earlier log for post-mortems.
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                # Own process group: stop()/kill() can then take the server's children down with it, and a
                # Ctrl-C meant for pytest does not race our own orderly shutdown.
                start_new_session=True,
                preexec_fn=_die_with_parent(self.stop_signal),
                # Popen switches user right before exec (no `runuser` in between), so the PID we hold is the
                # server's own and signals reach it directly.
                user=self.run_as.pw_uid if self.run_as else None,
                group=self.run_as.pw_gid if self.run_as else None,
                extra_groups=[] if self.run_as else None,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise

    def stop(self) -> None:
        """Shut the server down cleanly (forcefully after a timeout). A no-op when it is not running."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(Exception):
            self._request_stop(proc)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server and everything it started: a crash, for fault tests, and the last resort."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        # The leader is still alive here, so the process group is certainly ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its directory; the object is unusable afterwards."""
        try:
            self.stop()
        finally:
            self.kill()  # a no-op unless stop() itself blew up half-way
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        return _log_tail(self.log_path, lines)

    # Internals -----------------------------------------------------------------------------------------

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self._proc.returncode} during start-up "
                    f"(port {self.port}); log tail:\n{self.log_tail()}"
                )
            try:
                self._ping()
                return
            except Exception as exc:  # not accepting connections yet
                last_error = exc
            time.sleep(_POLL_INTERVAL_S)
        raise ServiceError(
            f"{self.name} did not accept connections on port {self.port} within {STARTUP_TIMEOUT_S:.0f} s "
            f"(last error: {last_error!r}); log tail:\n{self.log_tail()}"
        )


# --- PostgreSQL ----------------------------------------------------------------------------------------


def _pg_version_key(bin_dir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin$", bin_dir)
    return tuple(int(p) for p in match.group(1).split(".") if p) if match else ()


def find_pg_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres``: PATH, else the newest /usr/lib/postgresql/*/bin.

    Both binaries must come from the same directory (the same installation), so PATH entries are resolved
    through symlinks such as /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb.
    """
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_pg_version_key)[::-1]]
    for bin_dir in candidates:
        if all(os.access(bin_dir / exe, os.X_OK) for exe in ("initdb", "postgres")):
            return bin_dir
    raise ServiceError("initdb and postgres not found on PATH or in /usr/lib/postgresql/*/bin")


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run PostgreSQL as, or None to run as ourselves.

    PostgreSQL refuses to run as root, and tests run as root in CI and containers.
    """
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServiceError("running as root, but there is no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresServer(_Server):
    """A throwaway PostgreSQL cluster: trust auth, superuser ``postgres``, durability off for speed."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown, what `pg_ctl stop -m fast` sends

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        # Look everything up before super() creates the directory, so a failure leaves nothing behind.
        self.bin_dir = find_pg_bin_dir()
        self.run_as = _unprivileged_user()
        super().__init__(base_dir, port)
        self.data_dir = self.dir / "data"
        if self.run_as is not None:
            # The server user must own its data and socket directory. Its parent directories must also be
            # searchable by that user: the default (the system temp dir) is; a private base_dir may not be.
            os.chown(self.dir, self.run_as.pw_uid, self.run_as.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        super().start()

    def _initdb(self) -> None:
        cmd = [
            str(self.bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # nothing here needs to survive a power cut
        ]  # fmt: skip
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=self.dir,
            check=False,
            user=self.run_as.pw_uid if self.run_as else None,
            group=self.run_as.pw_gid if self.run_as else None,
            extra_groups=[] if self.run_as else None,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"initdb failed with code {result.returncode} in {self.data_dir}"
                f" (as user {self.run_as.pw_name if self.run_as else os.getuid()},"
                " who must be able to reach that directory):\n"
                f"{result.stdout}{result.stderr}"
            )

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # Keep the socket inside our directory instead of the shared /var/run/postgresql.
            "unix_socket_directories": str(self.dir),
            # A test server: trade crash safety for speed.
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            # Workers, pools and parallel tests each hold connections; the default of 100 runs out.
            "max_connections": "200",
        }
        cmd = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            cmd += ["-c", f"{key}={value}"]
        return cmd

    def _ping(self) -> None:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
        ) as conn:
            conn.execute("SELECT 1")


# --- Redis ---------------------------------------------------------------------------------------------


def find_redis_server() -> str:
    path = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None
    )
    if path is None:
        raise ServiceError("redis-server not found on PATH")
    return path


class RedisServer(_Server):
    """A throwaway Redis: no persistence, so a restart starts empty (like a Redis that lost its data)."""

    name = "redis"
    stop_signal = signal.SIGTERM

    def __init__(self, base_dir: Path | None = None, port: int | None = None) -> None:
        self.executable = find_redis_server()  # before super() creates the directory
        super().__init__(base_dir, port)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            self.executable,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",  # we keep the Popen, so it must stay in the foreground
        ]  # fmt: skip

    def _client(self) -> redis.Redis:
        # No retries: the readiness poll does its own, and SHUTDOWN drops the connection on purpose, which
        # redis-py's default retry policy would spend seconds reconnecting to.
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def _ping(self) -> None:
        with self._client() as client:
            client.ping()

    def _request_stop(self, proc: subprocess.Popen[bytes]) -> None:
        try:
            with self._client() as client:
                client.shutdown(nosave=True)
        except Exception:
            proc.terminate()


# --- context managers ----------------------------------------------------------------------------------


@contextmanager
def throwaway_postgres_server(base_dir: Path | None = None) -> Iterator[PostgresServer]:
    """A started PostgresServer; stopped and deleted on exit, whatever happens in the body."""
    server = PostgresServer(base_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def throwaway_postgres(base_dir: Path | None = None) -> Iterator[str]:
    """SQLAlchemy URL of a throwaway PostgreSQL: ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``."""
    with throwaway_postgres_server(base_dir) as server:
        yield server.url


@contextmanager
def throwaway_redis_server(base_dir: Path | None = None) -> Iterator[RedisServer]:
    """A started RedisServer; stopped and deleted on exit, whatever happens in the body."""
    server = RedisServer(base_dir)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextmanager
def throwaway_redis(base_dir: Path | None = None) -> Iterator[str]:
    """URL of a throwaway Redis: ``redis://127.0.0.1:PORT/0``."""
    with throwaway_redis_server(base_dir) as server:
        yield server.url


# --- databases -----------------------------------------------------------------------------------------


def _libpq_url(sqlalchemy_url: str) -> str:
    """psycopg wants ``postgresql://``; the project's URLs carry a driver (``postgresql+psycopg://``)."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str, name: str) -> str:
    """CREATE DATABASE ``name`` on the server of ``admin_url``; return ``admin_url`` pointed at it."""
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """Drop ``name`` if it exists, first disconnecting whoever still uses it (leaked pools, stray workers)."""
    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
