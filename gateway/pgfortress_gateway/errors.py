"""Errors the gateway answers with: JSON, a stable code, never SQL or row data.

GatewayError                   (root; status + code + message)
├── RequestError               4xx: the caller asked for something malformed
│   ├── NotFoundError          404: no such relation, function or column
│   └── PayloadError           400/413/415: too large, wrong type, bad JSON
├── AuthError                  401: missing, malformed or invalid credentials
├── ForbiddenError             403: valid credentials, role not allowed
├── RateLimitedError           429: with Retry-After
└── UnavailableError           503: the database cannot be reached; Retry-After
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ForbiddenError",
    "GatewayError",
    "NotFoundError",
    "PayloadError",
    "RateLimitedError",
    "RequestError",
    "UnavailableError",
]


class GatewayError(Exception):
    """Root of every error the gateway turns into an HTTP answer."""

    status = 500
    code = "PGF500"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def body(self) -> dict[str, str]:
        # The code follows the status actually answered, so 409 reads PGF409.
        return {"code": f"PGF{self.status}", "message": self.message}


class RequestError(GatewayError):
    status = 400
    code = "PGF400"


class NotFoundError(RequestError):
    status = 404
    code = "PGF404"


class PayloadError(RequestError):
    code = "PGF413"


class AuthError(GatewayError):
    status = 401
    code = "PGF401"


class ForbiddenError(GatewayError):
    status = 403
    code = "PGF403"


class RateLimitedError(GatewayError):
    status = 429
    code = "PGF429"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnavailableError(GatewayError):
    status = 503
    code = "PGF503"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after
