"""Envelope encryption against a real OpenBao transit engine."""

from __future__ import annotations

import json
import os

import hvac
import pytest

from safeguards import envelope, keys, openbao
from safeguards.errors import AccessDenied, IntegrityError, KeyUnavailable
from safeguards.settings import Settings
from tests.conftest import HOME

pytestmark = pytest.mark.integration


@pytest.fixture
def project(project_pair: tuple[str, str]) -> str:
    return project_pair[0]


@pytest.fixture
def bao(stack: Settings, project: str) -> hvac.Client:
    return openbao.login(stack, keys.identity(project))


@pytest.mark.parametrize("size", [0, 1, 1024, 1024 * 1024])
def test_round_trip(bao: hvac.Client, project: str, size: int) -> None:
    data = os.urandom(size)
    sealed = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/obj", data)
    assert size < 1024 or data[:64] not in sealed
    assert envelope.open_sealed(bao, f"{project}/obj", sealed) == data


def test_each_object_gets_a_fresh_data_key(bao: hvac.Client, project: str) -> None:
    one = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/a", b"same bytes")
    two = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/a", b"same bytes")
    assert one != two


def _header(blob: bytes) -> tuple[int, dict[str, str]]:
    size = int.from_bytes(blob[6:10], "big")
    return size, json.loads(blob[10 : 10 + size])


def test_tampered_ciphertext_is_refused(bao: hvac.Client, project: str) -> None:
    sealed = bytearray(
        envelope.seal(bao, keys.key_name(project, HOME), f"{project}/obj", b"x" * 100)
    )
    sealed[-20] ^= 0x01
    with pytest.raises(IntegrityError):
        envelope.open_sealed(bao, f"{project}/obj", bytes(sealed))


def test_tampered_header_is_refused(bao: hvac.Client, project: str) -> None:
    sealed = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/obj", b"x" * 100)
    size, header = _header(sealed)
    header["nonce"] = "AAAAAAAAAAAAAAAA"
    new = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    forged = sealed[:6] + len(new).to_bytes(4, "big") + new + sealed[10 + size :]
    with pytest.raises(IntegrityError):
        envelope.open_sealed(bao, f"{project}/obj", forged)


def test_object_moved_to_another_name_is_refused(bao: hvac.Client, project: str) -> None:
    sealed = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/a", b"bound to its name")
    with pytest.raises(IntegrityError):
        envelope.open_sealed(bao, f"{project}/b", sealed)


def test_garbage_is_refused_without_a_server_call(bao: hvac.Client) -> None:
    for blob in (b"", b"not an envelope", b"HMENV1\x00\x00\x00\x05{bad}"):
        with pytest.raises(IntegrityError):
            envelope.open_sealed(bao, "p/obj", blob)


def test_wrong_projects_key_is_refused(stack: Settings, project_pair: tuple[str, str]) -> None:
    a, b = project_pair
    bao_a = openbao.login(stack, keys.identity(a))
    sealed = envelope.seal(bao_a, keys.key_name(a, HOME), f"{a}/obj", b"data of a")
    # Relabelled as b's object, it is opened with b's identity and key: the unwrap fails.
    size, header = _header(sealed)
    header["key"] = keys.key_name(b, HOME)
    new = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    relabelled = sealed[:6] + len(new).to_bytes(4, "big") + new + sealed[10 + size :]
    with pytest.raises(IntegrityError):
        envelope.open_sealed(openbao.login(stack, keys.identity(b)), f"{a}/obj", relabelled)
    with pytest.raises(AccessDenied):
        envelope.open_sealed(openbao.login(stack, keys.identity(b)), f"{a}/obj", sealed)


def test_rotation_keeps_old_objects_readable_and_revocation_refuses_them(
    bao: hvac.Client, operator: hvac.Client, project: str
) -> None:
    old = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/old", b"before rotation")
    assert keys.rotate(operator, project, HOME) == 2
    new = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/new", b"after rotation")
    assert envelope.open_sealed(bao, f"{project}/old", old) == b"before rotation"
    keys.revoke_below(operator, project, HOME, 2)
    with pytest.raises(KeyUnavailable, match="revoked"):
        envelope.open_sealed(bao, f"{project}/old", old)
    assert envelope.open_sealed(bao, f"{project}/new", new) == b"after rotation"


def test_shredded_key_makes_data_unreadable(
    bao: hvac.Client, operator: hvac.Client, project: str
) -> None:
    sealed = envelope.seal(bao, keys.key_name(project, HOME), f"{project}/obj", b"soon unreadable")
    keys.shred(operator, project, [HOME])
    with pytest.raises(KeyUnavailable, match="destroyed"):
        envelope.open_sealed(bao, f"{project}/obj", sealed)
    with pytest.raises(KeyUnavailable):
        keys.describe(operator, project, HOME)


def test_a_shred_interrupted_halfway_completes_when_run_again(
    operator: hvac.Client, project: str
) -> None:
    first, *rest = keys.data_keys(project, [HOME])
    operator.secrets.transit.update_key_configuration(first, deletion_allowed=True)
    operator.secrets.transit.delete_key(first)
    keys.shred(operator, project, [HOME])
    names = operator.secrets.transit.list_keys()["data"]["keys"]
    assert not set(rest) & set(names)
