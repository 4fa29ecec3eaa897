"""Fixtures that start real services for the experiments tests: a PostgreSQL server (Ray: tests/conftest.py), and a
finished run folder of the tiny experiment that the modules share."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory):
    """A run folder of `attnas search --trials 2` (in its own process, as a user runs it) on the tiny experiment
    asking for 4, one trial at a time, whose experiment names its own space file; the space file and the experiment
    are deleted afterwards: the run folder must not need anything outside it. Searched once for the session; a test
    that changes the run works on a copy (run folders are relocatable)."""
    from attnas.search_space.resources import space_path
    from tests.experiments.tiny import write_tiny

    folder = tmp_path_factory.mktemp("finished")
    shutil.copyfile(space_path("small"), folder / "myspace.yaml")
    config = write_tiny(folder, space="myspace.yaml", concurrency=1)
    result = subprocess.run([sys.executable, "-m", "attnas.experiments.cli", "search", config, "--runs-dir",
                             str(folder / "runs"), "--trials", "2", "--quiet"], capture_output=True, text=True,
                            timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    (folder / "myspace.yaml").unlink()
    os.unlink(config)
    return folder / "runs" / "tiny"


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database on the session's PostgreSQL server, as a SQLAlchemy URL."""
    import uuid

    import psycopg2

    name = f"attnas_{uuid.uuid4().hex[:12]}"
    connection = psycopg2.connect(host="127.0.0.1", port=postgres_server, user="postgres", dbname="postgres")
    connection.autocommit = True
    connection.cursor().execute(f"CREATE DATABASE {name}")
    connection.close()
    return f"postgresql+psycopg2://postgres@127.0.0.1:{postgres_server}/{name}"


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server on 127.0.0.1 for the test session (yields its port); skips with the reason
    when the server binaries (Debian's postgresql package, which .ci/run installs) or the driver are missing."""
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install psycopg2-binary)")
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    run_as: list[str] = []
    folder = tempfile.mkdtemp(prefix="attnas-pg-")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to start PostgreSQL as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(folder, "data")
    port = _free_port()
    subprocess.run([*run_as, initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, pg_ctl, "-D", data, "-w", "-l", os.path.join(folder, "log"), "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start"], check=True,
                   capture_output=True)
    try:
        import psycopg2

        for _ in range(50):
            try:
                connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        else:
            pytest.fail(f"the PostgreSQL server started for the tests does not answer on port {port}")
        connection.close()
        yield port
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
