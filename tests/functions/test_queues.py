"""Which queue-worker failures the host should retry, and which go to the poison queue at once."""

from __future__ import annotations

import pytest

from functions.queues import is_transient
from shared.errors import (
    ConfigError,
    CredentialError,
    GraphError,
    GuestctlError,
    InputError,
    InvalidRecordError,
    PolicyError,
    RetryLaterError,
    StoreError,
    StoreLocationError,
    UnavailableError,
)


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        pytest.param(GraphError("throttled", status=429), True, id="graph-429"),
        pytest.param(GraphError("timeout", status=408), True, id="graph-408"),
        pytest.param(GraphError("down", status=503), True, id="graph-503"),
        pytest.param(GraphError("no answer"), True, id="graph-no-status"),
        pytest.param(UnavailableError("Graph unreachable"), True, id="graph-unreachable"),
        pytest.param(CredentialError("no token"), True, id="no-token-yet"),
        pytest.param(StoreError("store down"), True, id="store-unavailable"),
        pytest.param(RetryLaterError("2 rows failed for now"), True, id="rows-failed-for-now"),
        pytest.param(GraphError("forbidden", status=403), False, id="graph-403"),
        pytest.param(GraphError("bad request", status=400), False, id="graph-400"),
        pytest.param(InvalidRecordError("key too long"), False, id="store-refused-the-record"),
        pytest.param(StoreLocationError("/dev/null/x.db"), False, id="state-path-unusable"),
        pytest.param(ConfigError("no sender mailbox"), False, id="configuration"),
        pytest.param(PolicyError("bad policy"), False, id="policy"),
        pytest.param(InputError("bad row"), False, id="input"),
    ],
)
def test_only_what_may_pass_later_is_retried(error: GuestctlError, retry: bool) -> None:
    assert is_transient(error) is retry
