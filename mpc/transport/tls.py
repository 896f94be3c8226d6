"""Party keys, self-signed certificates and pinned TLS 1.3 contexts (layer: mpc core).

Every party (and the dealer, if any) has an ECDSA P-256 key pair and a
self-signed X.509 certificate made with ``cryptography``
(:func:`new_identity`, the ``mpc keys new`` command). The session's config
file lists every party's certificate; a party trusts exactly those
certificates and nothing else:

* both sides of every connection present a certificate (mutual TLS 1.3,
  ``CERT_REQUIRED`` on both ends, older TLS versions refused);
* the verify store holds only the listed certificates, each self-signed and
  marked ``CA:FALSE`` so that none can vouch for another key;
* after the handshake the peer's certificate is **pinned**: its SHA-256
  fingerprint must equal the listed certificate of the party it claims to
  be (:func:`fingerprint`), else the connection is dropped.

Host names are not checked: identity is the pinned certificate, not DNS.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..errors import ParameterError
from ..fileio import private_file

CERT_DAYS = 3650


@dataclass(frozen=True)
class IdentityFiles:
    """Where :func:`new_identity` wrote a key pair and its certificate."""

    key: Path
    certificate: Path
    fingerprint: str


def node_name(party: int | str) -> str:
    """File stem and certificate common name of a party id or ``"dealer"``."""
    if isinstance(party, str) and party == "dealer":
        return "dealer"
    try:
        pid = int(party)
    except (TypeError, ValueError):
        raise ParameterError(f"party must be a non-negative integer or 'dealer', not {party!r}") from None
    if pid < 0:
        raise ParameterError(f"party must be a non-negative integer or 'dealer', not {party!r}")
    return f"party{pid}"


def new_identity(party: int | str, out_dir: str | os.PathLike[str], *,
                 overwrite: bool = False) -> IdentityFiles:
    """Create ``<out>/partyI.key`` (mode 0600) and ``<out>/partyI.crt`` for party ``party``.

    The key is ECDSA P-256 from the OS CSPRNG; the certificate is self-signed,
    ``CA:FALSE``, valid for ten years. Existing files are kept unless
    ``overwrite``: a lost or replaced key means a new certificate for everyone.
    """
    name = node_name(party)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = out / f"{name}.key", out / f"{name}.crt"
    if not overwrite and (os.path.lexists(key_path) or os.path.lexists(cert_path)):
        raise ParameterError(f"{key_path} or {cert_path} already exists; refusing to overwrite a key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Concilium"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"concilium {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    # Fresh files under temporary names, then moved into place: never the old file's
    # permissions, never a planted link's target (a dangling one included).
    with private_file(key_path, replace=overwrite) as f:
        f.write(pem_key)
    pem_cert = cert.public_bytes(serialization.Encoding.PEM)
    with private_file(cert_path, replace=overwrite, mode=0o644) as f:
        f.write(pem_cert)
    return IdentityFiles(key_path, cert_path, fingerprint(pem_cert))


def load_certificate(path: str | os.PathLike[str]) -> bytes:
    """The DER bytes of the PEM certificate at ``path`` (clear error if unreadable)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ParameterError(f"cannot read certificate {path}: {exc.strerror}") from None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise ParameterError(f"{path} is not a PEM certificate") from None
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(cert: bytes) -> str:
    """SHA-256 fingerprint (hex) of a certificate given as DER or PEM bytes."""
    if cert.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(cert).hexdigest()


def context(server: bool, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str],
            trusted_der: Iterable[bytes]) -> ssl.SSLContext:
    """A TLS 1.3-only context presenting our certificate and trusting only ``trusted_der``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    try:
        ctx.load_cert_chain(os.fspath(cert_path), os.fspath(key_path))
    except (OSError, ssl.SSLError) as exc:
        raise ParameterError(f"cannot load this party's key {key_path} with certificate "
                             f"{cert_path}: {exc}") from None
    pem = "".join(ssl.DER_cert_to_PEM_cert(d) for d in trusted_der)
    if not pem:
        raise ParameterError("no peer certificates to trust")
    ctx.load_verify_locations(cadata=pem)
    ctx.check_hostname = False  # identity is the pinned certificate, checked after the handshake
    ctx.verify_mode = ssl.CERT_REQUIRED
    if server:
        ctx.num_tickets = 0  # no session resumption: every connection is a full handshake
    return ctx
