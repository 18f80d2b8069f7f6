"""A PgBouncer in transaction pooling mode on a loopback port, in front of the test PostgreSQL.

Started on first use (the Debian package ``pgbouncer``, which ``.ci/run`` installs) and
stopped when the test session ends. Clients share its server connections transaction by
transaction, as in production: session state and server-side prepared statements do
not follow a client from one transaction to the next.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import make_url

_process: subprocess.Popen[bytes] | None = None
_directory: str | None = None

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
unix_socket_dir =
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
"""


def executable() -> str | None:
    return shutil.which("pgbouncer") or next(
        (path for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(path)), None
    )


def start(postgres_url: str) -> str:
    """Start PgBouncer in front of ``postgres_url`` (once) and return its address as ``host:port``."""
    global _process, _directory
    if _process is not None:
        return _address
    program = executable()
    if program is None:
        raise RuntimeError("pgbouncer is not installed: apt-get install pgbouncer")
    server = make_url(postgres_url)
    _directory = tempfile.mkdtemp(prefix="obsku-pgbouncer-")
    os.chmod(_directory, 0o755)
    listen_port = _free_port()
    directory = Path(_directory)
    (directory / "users.txt").write_text(f'"{server.username or "postgres"}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        CONFIG.format(
            host=server.host or "127.0.0.1", port=server.port or 5432, listen_port=listen_port, directory=directory
        )
    )
    command = [program, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root: it drops to this user
        shutil.chown(directory, "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres")
        command[1:1] = ["-u", "postgres"]
    _process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", listen_port), timeout=1).close()
            break
        except OSError:
            if _process.poll() is not None or time.monotonic() > deadline:
                log = directory / "pgbouncer.log"
                raise RuntimeError(f"PgBouncer did not start: {log.read_text() if log.exists() else ''}") from None
            time.sleep(0.05)
    globals()["_address"] = f"127.0.0.1:{listen_port}"
    return _address


def stop() -> None:
    global _process, _directory
    if _process is not None:
        _process.terminate()
        try:
            _process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _process.kill()
        _process = None
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)
        _directory = None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_address = ""
