"""OPC UA security of the station: the self-signed application certificate (created on first start), the
username/password check, and the optional list of trusted client certificates.

Defaults: only the Basic256Sha256 SignAndEncrypt endpoint, no anonymous access. ``allow_unencrypted`` adds
a None endpoint (for a first look with a generic client on a bench; never on a plant network).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

log = logging.getLogger(__name__)

APP_URI = "urn:edge-inspection:plant:vision-system"
KEY_FILE, CERT_FILE = "server_key.pem", "server_cert.der"


@dataclass
class OpcUaSecurity:
    cert_dir: Path
    users: dict[str, str] = field(default_factory=dict)  # user name -> password
    allow_anonymous: bool = False
    allow_unencrypted: bool = False
    trusted_clients: Path | None = None  # folder of client certificates (DER or PEM); None: any valid one

    def __repr__(self) -> str:  # never the passwords
        return (f"OpcUaSecurity(cert_dir={self.cert_dir}, users={sorted(self.users)}, anonymous="
                f"{self.allow_anonymous}, unencrypted={self.allow_unencrypted}, trusted={self.trusted_clients})")


@dataclass(frozen=True)
class ServerCertificate:
    key_file: Path
    cert_file: Path
    created: bool
    sha1: str  # the OPC UA thumbprint
    sha256: str


def thumbprints(der: bytes) -> tuple[str, str]:
    return hashlib.sha1(der).hexdigest().upper(), hashlib.sha256(der).hexdigest().upper()


async def ensure_certificate(cert_dir: Path, app_uri: str = APP_URI) -> ServerCertificate:
    """The server's key and self-signed certificate in ``cert_dir``, created when missing (or expired)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = cert_dir / KEY_FILE, cert_dir / CERT_FILE
    before = cert_file.read_bytes() if cert_file.is_file() else None
    await setup_self_signed_certificate(key_file, cert_file, app_uri, socket.gethostname(),
                                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                                        {"commonName": "edge-inspection vision system",
                                         "organizationName": "edge-inspection"})
    key_file.chmod(0o600)
    der = cert_file.read_bytes()
    sha1, sha256 = thumbprints(der)
    return ServerCertificate(key_file, cert_file, created=before != der, sha1=sha1, sha256=sha256)


async def ensure_client_certificate(cert_dir: Path, app_uri: str) -> tuple[Path, Path]:
    """A client's key and self-signed certificate (for the simulated PLC and tests); created when missing."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = cert_dir / "client_key.pem", cert_dir / "client_cert.der"
    await setup_self_signed_certificate(key_file, cert_file, app_uri, socket.gethostname(),
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "edge-inspection plc-sim"})
    return key_file, cert_file


class PasswordUsers(UserManager):
    """Users with passwords (compared in constant time); anonymous only when allowed; and no session at all
    over an unencrypted channel unless allowed. (asyncua lets a client open a None channel for discovery even
    when no None endpoint is offered, and would then let it create a session on it: ``certificate`` is the
    channel's client certificate, empty exactly on such a channel, so it is refused here.)"""

    def __init__(self, users: dict[str, str], allow_anonymous: bool, allow_unencrypted: bool = False):
        self.users, self.allow_anonymous, self.allow_unencrypted = dict(users), allow_anonymous, allow_unencrypted

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if not certificate and not self.allow_unencrypted:
            log.warning("OPC UA: session on an unencrypted channel refused (user %r)", username)
            return None
        if username is None:
            if self.allow_anonymous:
                return User(role=UserRole.User, name="anonymous")
            log.warning("OPC UA: anonymous session refused")
            return None
        known = self.users.get(username)
        if known is not None and password is not None and hmac.compare_digest(known.encode(), password.encode()):
            return User(role=UserRole.User, name=username)
        log.warning("OPC UA: user %r refused (unknown user or wrong password)", username)
        return None


def _load_cert(path: Path) -> x509.Certificate | None:
    data = path.read_bytes()
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        try:
            return x509.load_pem_x509_certificate(data)
        except ValueError:
            log.warning("trusted client folder: %s is not a certificate; skipped", path)
            return None


class TrustedClients:
    """Accepts a client certificate only when it is in ``folder`` (read at every connection) and in date."""

    def __init__(self, folder: Path):
        self.folder = folder

    def fingerprints(self) -> set[bytes]:
        certs = (_load_cert(p) for p in sorted(self.folder.glob("*")) if p.is_file())
        return {c.public_bytes(Encoding.DER) for c in certs if c is not None}

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
        if cert.public_bytes(Encoding.DER) not in self.fingerprints():
            sha1, _ = thumbprints(cert.public_bytes(Encoding.DER))
            log.warning("OPC UA: client certificate %s (%s) is not trusted; copy it into %s to trust it", sha1,
                        app.ApplicationUri, self.folder)
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)
