"""Envelope encryption of objects under a project's key.

Each object gets a fresh AES-256 data key from OpenBao transit. The object is encrypted
with AES-256-GCM; the associated data binds the header (key name, wrapped key, nonce) and
the object's identity (e.g. ``project/bucket/path``), so a sealed object moved to another
name, or with any byte changed, does not open. Only the wrapped data key is stored::

    b"HMENV1" | header length (4 bytes, big-endian) | header JSON | ciphertext and GCM tag

The plaintext data key lives only in memory for the duration of one call.
"""

from __future__ import annotations

import base64
import json
import os

import hvac
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from safeguards import keys
from safeguards.errors import IntegrityError

MAGIC = b"HMENV1"
_ALG = "AES-256-GCM"


def seal(bao: hvac.Client, key: str, identity: str, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` for object `identity` under transit key `key`."""
    data_key, wrapped = keys.new_data_key(bao, key)
    nonce = os.urandom(12)
    header = json.dumps(
        {
            "alg": _ALG,
            "key": key,
            "wrapped_key": wrapped,
            "nonce": base64.b64encode(nonce).decode(),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _aad(header, identity))
    return MAGIC + len(header).to_bytes(4, "big") + header + ciphertext


def open_sealed(bao: hvac.Client, identity: str, blob: bytes) -> bytes:
    """Decrypt an envelope made by `seal` for the same `identity`."""
    header_bytes, fields, ciphertext = _parse(blob)
    data_key = keys.unwrap_data_key(bao, fields["key"], fields["wrapped_key"])
    try:
        return AESGCM(data_key).decrypt(
            base64.b64decode(fields["nonce"]), ciphertext, _aad(header_bytes, identity)
        )
    except InvalidTag as exc:
        raise IntegrityError(
            "the object was altered, or is not the object it claims to be"
        ) from exc


def key_of(blob: bytes) -> str:
    """The transit key an envelope names (its beginning is enough); IntegrityError when
    `blob` is not one."""
    return _parse(blob)[1]["key"]


def _aad(header: bytes, identity: str) -> bytes:
    return MAGIC + header + b"\x00" + identity.encode()


def _parse(blob: bytes) -> tuple[bytes, dict[str, str], bytes]:
    if len(blob) < len(MAGIC) + 4 or not blob.startswith(MAGIC):
        raise IntegrityError("not a sealed object (bad magic)")
    size = int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 4], "big")
    start = len(MAGIC) + 4
    header = blob[start : start + size]
    try:
        fields = json.loads(header)
        if fields["alg"] != _ALG or not all(
            isinstance(fields[k], str) for k in ("key", "wrapped_key", "nonce")
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError("not a sealed object (bad header)") from exc
    return header, fields, blob[start + size :]
