"""Transmission security: OpenBao answers only verified TLS."""

from __future__ import annotations

import hvac
import pytest
import requests

from safeguards import openbao
from safeguards.errors import Unavailable
from safeguards.settings import Settings

pytestmark = pytest.mark.integration


def test_plaintext_http_request_does_not_succeed(stack: Settings) -> None:
    url = f"http://{stack.host}:{stack.port_base}/v1/sys/health"
    try:
        response = requests.get(url, timeout=5)
    except requests.ConnectionError:
        return
    assert response.status_code == 400
    assert "HTTPS" in response.text and "initialized" not in response.text


def test_client_without_the_ca_bundle_is_refused(stack: Settings) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{stack.openbao_url}/v1/sys/health", timeout=5)
    untrusting = hvac.Client(url=stack.openbao_url, verify=True)
    with pytest.raises(Unavailable, match="TLS verification"), openbao.openbao_errors("probe"):
        untrusting.sys.read_health_status(method="GET")


def test_client_with_the_ca_bundle_verifies_the_server(stack: Settings) -> None:
    response = requests.get(
        f"{stack.openbao_url}/v1/sys/health", verify=str(stack.ca_bundle), timeout=5
    )
    assert response.status_code == 200
    assert response.json()["sealed"] is False
