"""RFC 3161 timestamp tokens over signed checkpoints: request, and check, offline.

A token binds the SHA-256 of a checkpoint's signed note (its exact bytes) to a time a Time
Stamping Authority vouches for. Indelible stores the TSA's whole TimeStampResp (DER), as
OpenSSL's ``ts -reply`` writes it and ``ts -verify`` reads it.

The ASN.1 and CMS work is done by ``rfc3161-client`` (Trail of Bits; the library
sigstore-python uses), imported only when a token is made or checked: an auditor who has
no tokens to check needs nothing beyond ``cryptography``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ProofError

__all__ = ["MEDIA_QUERY", "MEDIA_REPLY", "TimestampChecker", "load_checker", "timestamp_request"]

MEDIA_QUERY = "application/timestamp-query"
MEDIA_REPLY = "application/timestamp-reply"


def _library():
    try:
        import rfc3161_client
    except ImportError as e:  # the optional dependency of an auditor's install
        raise ProofError("checking RFC 3161 tokens needs the rfc3161-client package "
                         "(pip install rfc3161-client)") from e
    return rfc3161_client


def timestamp_request(message: bytes) -> tuple[bytes, int]:
    """The DER TimeStampReq over SHA-256(message), asking for the TSA's certificate, and the
    nonce it carries (a reply must echo it)."""
    lib = _library()
    request = (lib.TimestampRequestBuilder().data(message)
               .hash_algorithm(lib.HashAlgorithm.SHA256).cert_request(cert_request=True)
               .nonce(nonce=True).build())
    return request.as_bytes(), request.nonce


@dataclass(frozen=True)
class TimestampChecker:
    """Checks tokens against the TSA certificates an auditor or operator trusts: the roots
    (self-signed CA certificates) and any intermediates, in PEM."""

    roots_pem: bytes
    intermediates_pem: bytes = b""

    def __call__(self, token: bytes, message: bytes, *, nonce: int | None = None) -> str:
        """The TSA's time (RFC 3339, UTC) if ``token`` is a granted reply, signed by a
        certificate that chains to the roots with the timeStamping purpose, over SHA-256 of
        exactly ``message``; else :class:`ProofError` saying why."""
        lib = _library()
        from cryptography import x509

        try:
            roots = x509.load_pem_x509_certificates(self.roots_pem)
            middle = (x509.load_pem_x509_certificates(self.intermediates_pem)
                      if self.intermediates_pem.strip() else [])
        except ValueError as e:
            raise ProofError(f"the TSA certificates are not PEM certificates: {e}") from e
        try:
            reply = lib.decode_timestamp_response(token)
        except Exception as e:  # noqa: BLE001 - the Rust parser raises its own kinds
            raise ProofError(f"not an RFC 3161 TimeStampResp: {e}") from e
        builder = lib.VerifierBuilder(roots=list(roots), intermediates=list(middle))
        if nonce is not None:
            builder = builder.nonce(nonce)
        try:
            builder.build().verify_message(reply, message)
        except lib.VerificationError as e:
            raise ProofError(f"the token does not verify: {e}") from e
        except Exception as e:  # noqa: BLE001 - malformed CMS surfaces as other errors
            raise ProofError(f"the token does not verify: {type(e).__name__}: {e}") from e
        when = reply.tst_info.gen_time
        return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_checker(pems: Sequence[bytes]) -> TimestampChecker:
    """A checker over PEM files' contents; roots and intermediates may share a file (a
    self-signed certificate is taken as a root). :class:`ProofError` if they are not PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    roots, middle = [], []
    try:
        certificates = [c for pem in pems for c in x509.load_pem_x509_certificates(pem)]
    except ValueError as e:
        raise ProofError(f"the TSA CA file holds no PEM certificate: {e}") from e
    for cert in certificates:
        (roots if cert.issuer == cert.subject else middle).append(cert.public_bytes(Encoding.PEM))
    if not roots:
        raise ProofError("the TSA CA file holds no self-signed (root) certificate")
    return TimestampChecker(b"".join(roots), b"".join(middle))
