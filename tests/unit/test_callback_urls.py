"""Server-side request forgery: callback URLs that reach into private networks are refused."""

from __future__ import annotations

import pytest

from shared.callback_urls import UnsafeCallbackUrl, check_callback_url


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.5/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata service
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT, not global
    "http://224.0.0.1/hook",
])
def test_private_and_special_addresses_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url(url, allow_private=False)


@pytest.mark.parametrize("url", [
    "ftp://example.com/hook", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    "http:///nohost", "https://user:pass@example.com/hook", "http://example.com:99999/", "x" * 3000,
])
def test_other_schemes_credentials_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallbackUrl):
        check_callback_url(url, allow_private=True)


def test_public_address_literal_is_accepted_without_dns() -> None:
    assert check_callback_url("https://93.184.215.14/hook", allow_private=False)


def test_private_addresses_pass_when_the_operator_allows_them() -> None:
    assert check_callback_url("http://127.0.0.1:9/hook", allow_private=True)


def test_the_refusal_never_quotes_the_url() -> None:
    with pytest.raises(UnsafeCallbackUrl) as info:
        check_callback_url("http://10.0.0.1/secret-path-x1", allow_private=False)
    assert "secret-path-x1" not in str(info.value)
