"""Whom the sender trusts for `https` webhooks, and what it says when a receiver's
certificate is not trusted (SPEC 9.7).

Receivers in development sit behind mkcert or a self-signed certificate. `--ca-file`
adds their CA to the system's; `--insecure-receivers` stops checking altogether.
A handshake that fails is the error class `tls`, and the journal says why in its
detail: `certificate verify failed for HOST: self-signed certificate`.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from mock_qrm.contract.codes import CERTIFICATE_FAILED


class TrustError(ValueError):
    """A CA file that cannot be used; the message says why, in a few words."""


def receiver_context(ca_file: str | None = None, *, insecure: bool = False) -> ssl.SSLContext:
    """The client context for every `https` webhook.

    The system's CAs, plus `ca_file`'s certificates (a PEM bundle) when given; with
    `insecure`, no check at all (a certificate is taken from anyone, for any name).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file is not None:
        load_ca_file(context, ca_file)
    return context


def load_ca_file(context: ssl.SSLContext, ca_file: str) -> None:
    """Trust `ca_file`'s certificates too; a `TrustError` when it holds none or cannot be read."""
    path = Path(ca_file).expanduser()
    if not path.is_file():
        raise TrustError("no such file" if not path.exists() else "not a file")
    try:
        context.load_verify_locations(cafile=str(path))
    except PermissionError:
        raise TrustError("cannot be read (permission denied)") from None
    except (ssl.SSLError, OSError, UnicodeDecodeError):
        raise TrustError("holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def check_ca_file(ca_file: str) -> str:
    """`ca_file` if it loads, else a `TrustError` saying why (settings check it at start).

    On a bare context: the system's CAs (some 50 ms to load) have nothing to say about it.
    """
    load_ca_file(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), ca_file)
    return ca_file


def failure_detail(exc: BaseException, host: str) -> str | None:
    """What went wrong in a TLS handshake with `host`, for the journal; `None` if it was not TLS.

    A certificate the sender does not trust reads `certificate verify failed for HOST:
    REASON` (OpenSSL's reason: `self-signed certificate`, `unable to get local issuer
    certificate`, a name mismatch, an expired certificate); any other TLS failure
    reads `handshake with HOST failed: REASON`.
    """
    if isinstance(exc, TrustError):  # the CA file went away since the server started
        return f"cannot check {host}'s certificate: the CA file {exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "not trusted"
        return f"{CERTIFICATE_FAILED} {host}: {reason}"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).replace("_", " ").lower()
        hint = " (does it speak HTTPS on that port?)" if "wrong version" in reason else ""
        return f"handshake with {host} failed: {reason}{hint}"
    return None
