"""The Graph access layer over real HTTP (kiota adapter + httpx) against a scripted loopback server."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from shared.errors import CredentialError, GraphError, NotFoundError, ThrottledError, UnavailableError
from shared.graph import Graph, GraphOptions, RetryPolicy
from shared.graph.batch import BatchRequest
from tests.support.cli import unused_port
from tests.support.scripted_server import Handler, Reply, ScriptedServer, SeenRequest, graph_error

StartServer = Callable[[Handler], ScriptedServer]


def sequence(*replies: Reply) -> Handler:
    """Answer with `replies` in order, then keep repeating the last one."""
    remaining = list(replies)

    def handle(_: SeenRequest) -> Reply:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return handle


def graph_for(server: ScriptedServer, budget_seconds: float = 10.0) -> Graph:
    return Graph(
        GraphOptions(
            base_url=server.base_url,
            auth="emulator",
            retry=RetryPolicy(budget_seconds=budget_seconds, backoff_base=0.05, backoff_max=0.2),
        )
    )


def assert_kiota_never_retried(server: ScriptedServer) -> None:
    """kiota's RetryHandler marks its re-sends with Retry-Attempt; ours never do."""
    assert all("retry-attempt" not in r.headers for r in server.requests)


OK = Reply(200, b'{"id": "1"}')


async def test_429_with_retry_after_is_sent_again_after_that_many_seconds(
    scripted_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = scripted_server(sequence(graph_error(429, "TooManyRequests", "slow down", {"Retry-After": "1"}), OK))
    graph = graph_for(server)
    with caplog.at_level(logging.INFO, logger="guestctl.graph"):
        body = await graph.get_json("/users/1")
    await graph.close()
    assert body == {"id": "1"}
    assert len(server.requests) == 2
    # The wait chosen is Graph's Retry-After, not the backoff (at most 0.2 s here): what the retry layer
    # decides, not how long the machine took to get there.
    waits = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(waits) == 1
    assert waits[0].endswith("retrying in 1.0 s (attempt 1)"), waits[0]
    assert graph.pacer.throttled == 1
    assert_kiota_never_retried(server)


@pytest.mark.parametrize(
    ("method", "idempotent", "expected_requests"),
    [
        pytest.param("POST", None, 1, id="post-503-not-resent"),
        pytest.param("POST", True, 2, id="post-marked-idempotent-resent"),
        pytest.param("PATCH", None, 1, id="patch-503-not-resent-by-default"),
        pytest.param("GET", None, 2, id="get-503-resent"),
    ],
)
async def test_503_is_resent_only_when_idempotent(
    scripted_server: StartServer, method: str, idempotent: bool | None, expected_requests: int
) -> None:
    server = scripted_server(sequence(graph_error(503, "serviceNotAvailable", "busy"), OK))
    graph = graph_for(server)
    try:
        if expected_requests == 1:
            with pytest.raises(GraphError) as raised:
                await graph.request(method, "/invitations", json_body={"a": 1}, idempotent=idempotent)
            assert raised.value.status == 503
        else:
            await graph.request(method, "/invitations", json_body={"a": 1}, idempotent=idempotent)
    finally:
        await graph.close()
    assert len(server.requests) == expected_requests
    assert_kiota_never_retried(server)


async def test_429_on_a_post_is_resent_because_graph_did_nothing(scripted_server: StartServer) -> None:
    server = scripted_server(sequence(graph_error(429, "TooManyRequests", "x", {"Retry-After": "0"}), OK))
    graph = graph_for(server)
    await graph.request("POST", "/invitations", json_body={"invitedUserEmailAddress": "a@b.com"})
    await graph.close()
    assert [r.method for r in server.requests] == ["POST", "POST"]
    assert_kiota_never_retried(server)


async def test_retry_after_beyond_the_budget_fails_at_once_with_graphs_details(scripted_server: StartServer) -> None:
    server = scripted_server(sequence(graph_error(429, "TooManyRequests", "wait a minute", {"Retry-After": "60"})))
    graph = graph_for(server, budget_seconds=5)
    with pytest.raises(ThrottledError) as raised:
        await graph.get_json("/users")
    await graph.close()
    assert len(server.requests) == 1
    error = raised.value
    assert (error.status, error.code, error.request_id, error.retry_after) == (
        429,
        "TooManyRequests",
        "req-TooManyRequests",
        60.0,
    )
    assert "req-TooManyRequests" in error.one_line()


async def test_graph_errors_map_to_typed_exceptions(scripted_server: StartServer) -> None:
    server = scripted_server(sequence(graph_error(404, "Request_ResourceNotFound", "no such user")))
    graph = graph_for(server)
    with pytest.raises(NotFoundError) as raised:
        await graph.get_json("/users/missing")
    await graph.close()
    assert raised.value.code == "Request_ResourceNotFound"
    assert raised.value.message == "no such user"
    assert "GET http://127.0.0.1" in raised.value.one_line()
    assert "/users/missing" in raised.value.one_line()


async def test_token_sent_to_the_configured_host(scripted_server: StartServer) -> None:
    server = scripted_server(sequence(OK))
    graph = graph_for(server)
    await graph.get_json("/users/1")
    await graph.close()
    assert server.requests[0].headers["authorization"] == "Bearer emulator-token"


async def test_paging_follows_next_links_and_resends_headers(scripted_server: StartServer) -> None:
    def handle(request: SeenRequest) -> Reply:
        page = 2 if "$skiptoken=p2" in request.path else 1
        body: dict[str, object] = {"value": [{"id": f"u{page}"}]}
        if page == 1:
            body["@odata.nextLink"] = f"{server.base_url}/users?$skiptoken=p2"
        return Reply(200, json.dumps(body).encode())

    server = scripted_server(handle)
    graph = graph_for(server)
    ids = []
    async for page in graph.pages(
        "/users", params={"$select": "id", "$count": "true"}, headers={"ConsistencyLevel": "eventual"}
    ):
        ids += [item["id"] for item in page.items]
    await graph.close()
    assert ids == ["u1", "u2"]
    assert [r.headers.get("consistencylevel") for r in server.requests] == ["eventual", "eventual"]
    assert server.requests[0].path == "/v1.0/users?$select=id&$count=true"


async def test_paging_refuses_a_next_link_to_another_host(scripted_server: StartServer) -> None:
    server = scripted_server(
        sequence(Reply(200, b'{"value": [], "@odata.nextLink": "http://127.0.0.2:9/v1.0/users?$skiptoken=x"}'))
    )
    graph = graph_for(server)
    with pytest.raises(GraphError, match="another host"):
        async for _ in graph.pages("/users"):
            pass
    await graph.close()
    assert len(server.requests) == 1


async def test_batch_retries_throttled_items_and_their_failed_dependants(scripted_server: StartServer) -> None:
    rounds: list[list[dict[str, object]]] = []

    def handle(request: SeenRequest) -> Reply:
        items = json.loads(request.body)["requests"]
        rounds.append(items)
        responses = []
        for item in items:
            if len(rounds) == 1 and item["id"] == "2":
                responses.append({"id": "2", "status": 429, "headers": {"Retry-After": "0"}, "body": {}})
            elif len(rounds) == 1 and item["id"] == "3":
                responses.append({"id": "3", "status": 424, "body": {}})
            elif item["id"] == "4":
                responses.append({"id": "4", "status": 400, "body": {"error": {"code": "Request_BadRequest"}}})
            else:
                responses.append({"id": item["id"], "status": 201, "body": {"echo": item["id"]}})
        return Reply(200, json.dumps({"responses": list(reversed(responses))}).encode())

    server = scripted_server(handle)
    graph = graph_for(server)
    results = await graph.batch(
        [
            BatchRequest("1", "POST", "/invitations", body={"n": 1}),
            BatchRequest("2", "POST", "/invitations", body={"n": 2}),
            BatchRequest("3", "POST", "/groups/g/members/$ref", body={"n": 3}, depends_on=("2",)),
            BatchRequest("4", "GET", "/users/bad"),
        ]
    )
    await graph.close()
    assert {i: r.status for i, r in results.items()} == {"1": 201, "2": 201, "3": 201, "4": 400}
    assert results["1"].body == {"echo": "1"}
    assert [item["id"] for item in rounds[1]] == ["2", "3"]
    assert rounds[1][1]["dependsOn"] == ["2"]
    assert rounds[0][0]["headers"] == {"Content-Type": "application/json"}
    assert graph.pacer.throttled == 1


def test_batch_refuses_dependency_chains_split_across_batches() -> None:
    from shared.graph.batch import _chunks

    chain = [BatchRequest("0", "GET", "/users")] + [
        BatchRequest(str(i), "GET", "/users", depends_on=(str(i - 1),)) for i in range(1, 21)
    ]
    with pytest.raises(ValueError, match="exceeds 20"):
        _chunks(chain)
    assert [len(c) for c in _chunks([BatchRequest(str(i), "GET", "/users") for i in range(45)])] == [20, 20, 5]


class NoToken:
    """A credential that finds nothing, as DefaultAzureCredential does before `az login`."""

    async def get_token(self, *scopes: str, **kwargs: object) -> object:
        from azure.identity import CredentialUnavailableError

        raise CredentialUnavailableError(message="no credential found\n" + "troubleshooting text\n" * 500)

    async def close(self) -> None:
        return None


async def test_an_unreachable_graph_is_one_error_naming_the_host_and_setting() -> None:
    base_url = f"http://127.0.0.1:{unused_port()}/v1.0"
    graph = Graph(GraphOptions(base_url=base_url, auth="emulator", retry=RetryPolicy(budget_seconds=0.3)))
    with pytest.raises(UnavailableError) as raised:
        await graph.get_json("/users", params={"$skiptoken": "X" * 5000})
    await graph.close()
    line = raised.value.one_line()
    assert "cannot reach Microsoft Graph at 127.0.0.1: could not connect" in line
    assert f"GUESTCTL_GRAPH_URL / GUESTCTL_CLOUD (now {base_url})" in line
    assert "$skiptoken=XXXXXXXX…" in line, "the cursor is shortened"
    assert "X" * 9 not in line
    assert not isinstance(raised.value, GraphError), "per-item handlers of Graph's answers must not swallow it"


async def test_a_graph_that_does_not_answer_times_out_into_the_same_error(scripted_server: StartServer) -> None:
    import threading

    answer = threading.Event()

    def hang(_: SeenRequest) -> Reply:
        answer.wait(10)
        return OK

    server = scripted_server(hang)
    graph = Graph(
        GraphOptions(
            base_url=server.base_url, auth="emulator", retry=RetryPolicy(budget_seconds=0.5), timeout_seconds=0.2
        )
    )
    try:
        with pytest.raises(UnavailableError, match="no answer within 0 s"):
            await graph.get_json("/users/1")
    finally:
        answer.set()
        await graph.close()


async def test_no_credential_is_one_short_error_and_nothing_is_sent(scripted_server: StartServer) -> None:
    server = scripted_server(sequence(OK))
    graph = Graph(GraphOptions(base_url=server.base_url, auth="default"), credential=NoToken())
    with pytest.raises(CredentialError) as raised:
        await graph.get_json("/users/1")
    await graph.close()
    line = raised.value.one_line()
    assert line.startswith(
        "no Azure credential for Microsoft Graph at 127.0.0.1 (GUESTCTL_AUTH=default): no credential"
    )
    assert "run `az login`" in line
    assert "AZURE_CLIENT_SECRET" in line
    assert "troubleshooting" not in line
    assert int(raised.value.exit_code) == 4
    assert server.requests == []


async def test_a_write_whose_answer_is_lost_fails_that_item_not_the_run(emulator, graph: Graph) -> None:
    """Chaos found it: a lost answer to a POST was an UnavailableError, which stops a whole run (a bulk invite
    never finished under 5% lost answers). It is a GraphError now: the item fails, the run goes on."""
    from shared.errors import OutcomeUnknownError, is_transient

    emulator.control.set_faults(drop_rate=1.0)
    body = {"invitedUserEmailAddress": "lost@partner.example", "inviteRedirectUrl": "https://myapps.microsoft.com"}
    with pytest.raises(OutcomeUnknownError) as raised:
        await graph.request("POST", "/invitations", json_body=body)
    assert isinstance(raised.value, GraphError)
    assert is_transient(raised.value)
    assert emulator.tenant.find_user_by_address("lost@partner.example") is not None, "the change was made"


async def test_a_delete_whose_answer_was_lost_is_done_when_the_retry_finds_it_gone(emulator, graph: Graph) -> None:
    """Chaos found it: the retry of an idempotent DELETE answered 404 and the caller audited a change that was
    made as refused (offboarding's group and sponsor removals, trust rollback): it is done. A 404 on the
    first attempt is still NotFoundError."""
    group = next(g for g in emulator.tenant.groups.values() if g.members and not g.is_dynamic)
    member = sorted(group.members)[0]
    emulator.control.set_faults(drop_rate=1.0, method="DELETE")

    await graph.request("DELETE", f"/groups/{group.id}/members/{member}/$ref", idempotent=True)

    assert member not in group.members
    assert [f["kind"] for f in emulator.control.injected_faults()] == ["drop"]
    with pytest.raises(NotFoundError):
        await graph.request("DELETE", f"/groups/{group.id}/members/{member}/$ref", idempotent=True)
