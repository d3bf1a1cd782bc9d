"""The throwaway PostgreSQL/Redis harness starts real servers and leaves nothing behind when it stops them."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest
import redis
import sqlalchemy

from tests.support.services import (
    create_database,
    drop_database,
    free_port,
    throwaway_postgres,
    throwaway_postgres_server,
    throwaway_redis,
    throwaway_redis_server,
)


def port_is_free(port: int) -> bool:
    # SO_REUSEADDR, as the servers themselves use: connections the server closed linger in TIME_WAIT and
    # would make a plain bind fail although nothing listens any more.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_group_gone(pgid: int) -> bool:
    """True when no process is left in the group: the server and every child it forked are gone."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_free_port_is_bindable() -> None:
    assert port_is_free(free_port())


def test_postgres_runs_queries_and_stops_cleanly() -> None:
    with throwaway_postgres_server() as server:
        pid, port, directory = server.pid, server.port, server.dir
        assert pid is not None and server.url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        engine = sqlalchemy.create_engine(server.url)
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SHOW fsync")).scalar_one() == "off"
            assert conn.execute(sqlalchemy.text("SHOW max_connections")).scalar_one() == "200"
        engine.dispose()
    assert process_group_gone(pid)
    assert port_is_free(port)
    assert not directory.exists()


def test_postgres_keeps_data_across_restart_and_crash() -> None:
    with throwaway_postgres_server() as server:
        dsn = server.url.replace("+psycopg", "")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v int)")
            conn.execute("INSERT INTO t VALUES (42)")
        first_pid, port = server.pid, server.port

        server.stop()
        assert not server.running and server.pid is None
        assert first_pid is not None and process_group_gone(first_pid)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)

        server.start()
        assert server.port == port and server.pid != first_pid
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT v FROM t").fetchone() == (42,)

        # A crash (SIGKILL) followed by start() goes through crash recovery, data intact.
        server.kill()
        server.restart()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT v FROM t").fetchone() == (42,)


def test_create_and_drop_database() -> None:
    with throwaway_postgres() as admin_url:
        url = create_database(admin_url, "veil-test")
        assert url.endswith("/veil-test") and url.startswith("postgresql+psycopg://")
        # A connection left open must not stop the drop.
        leaked = psycopg.connect(url.replace("+psycopg", ""))
        drop_database(admin_url, "veil-test")
        drop_database(admin_url, "veil-test")  # idempotent
        leaked.close()
        with psycopg.connect(admin_url.replace("+psycopg", "")) as conn:
            row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'veil-test'").fetchone()
            assert row == (0,)


def test_redis_pings_and_stops_cleanly() -> None:
    with throwaway_redis_server() as server:
        pid, port, directory = server.pid, server.port, server.dir
        assert pid is not None and server.url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
    assert process_group_gone(pid)
    assert port_is_free(port)
    assert not directory.exists()


def test_redis_restart_on_same_port_starts_empty() -> None:
    with throwaway_redis() as url, throwaway_redis_server() as server:
        assert url != server.url
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        old_pid = server.pid
        server.restart()
        assert server.pid != old_pid
        assert client.get("k") is None  # no persistence: the restarted Redis has lost its data
        client.close()


def test_servers_are_stopped_when_the_body_raises() -> None:
    pids: list[int] = []
    ports: list[int] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        throwaway_postgres_server() as pg,
        throwaway_redis_server() as rd,
    ):
        for server in (pg, rd):
            assert server.pid is not None
            pids.append(server.pid)
            ports.append(server.port)
        raise RuntimeError("boom")
    assert all(process_group_gone(pid) for pid in pids)
    assert all(port_is_free(port) for port in ports)
