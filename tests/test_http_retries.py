"""What the HTTP rater adds to urllib3's ``Retry``, against the same scriptable vendor as
``test_http_rater.py``: each test fails with urllib3's stock behaviour in that place."""

from __future__ import annotations

import ssl

import pytest
import torch

from auditkit.contract.errors import RaterError
from auditkit.raters import load_rater
from test_http_rater import Vendor, _self_signed, describe, expected, rows


@pytest.fixture
def vendor():
    server = Vendor()
    yield server
    server.close()


@pytest.mark.parametrize("retry_after", ["soon", "-5", "1.5"])
def test_a_retry_after_urllib3_cannot_read_costs_a_backoff_not_the_clip(tmp_path, vendor, retry_after):
    # urllib3's own parser raises InvalidHeader out of the request for each of these.
    vendor.script = lambda level, n: ("status", 503, {"Retry-After": retry_after}, b"") if n == 0 else "ok"
    rater = load_rater(f"http:{describe(tmp_path, vendor.url, max_retry_after=2)}")
    torch.testing.assert_close(rater(rows(100)), torch.tensor([expected(100)]))
    assert rater.stats == {"requests": 2, "retries": 1, "rows_failed": 0}


def test_a_certificate_that_does_not_verify_is_not_retried(tmp_path):
    # urllib3 counts a TLS failure as an "other" error and would try it `retries` times more.
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Vendor(tls=context)
    try:
        rater = load_rater(f"http:{describe(tmp_path, server.url, retries=3)}")
        with pytest.raises(RaterError, match="does not verify"):
            rater(rows(100))
    finally:
        server.close()
    assert rater.stats == {"requests": 1, "retries": 0, "rows_failed": 0}
