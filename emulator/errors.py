"""Graph-shaped errors: every failure leaves the emulator as Graph's `{"error": {...}}` body."""

from __future__ import annotations


class GraphError(Exception):
    """An error response with Graph's status, code and message.

    `headers` carries extra response headers (Retry-After, Location, WWW-Authenticate).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def unsupported_query(message: str) -> GraphError:
    """Graph's answer to advanced queries without ConsistencyLevel and to unsupported operators."""
    return GraphError(400, "Request_UnsupportedQuery", message)


def not_found(resource: str, identifier: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{identifier}' does not exist or one of its queried reference-property objects are not present.",
    )


def forbidden(message: str = "Insufficient privileges to complete the operation.") -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", message)


def error_body(code: str, message: str, date: str, request_id: str, client_request_id: str) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
