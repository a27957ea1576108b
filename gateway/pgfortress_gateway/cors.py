"""Cross-origin rules: an allow-list of exact origins, nothing inferred.

An origin is echoed back only when it is in the list, compared as a whole
string; ``*`` is answered literally and only when credentials are off. Every
answer that depends on the ``Origin`` header carries ``Vary: Origin`` so
that a shared cache never hands one origin's answer to another.
"""

from __future__ import annotations

from collections.abc import Iterable

from .config import CorsConfig
from .errors import ForbiddenError

__all__ = ["CorsPolicy", "CorsRefusedError"]

_EXPOSED = ("Content-Location", "Content-Range", "Preference-Applied", "Range-Unit")
_VARY_PREFLIGHT = (
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)


class CorsRefusedError(ForbiddenError):
    """403 for a preflight the policy does not allow; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__("cross-origin request not allowed")
        self.reason = reason
        self.headers = {"Vary": _VARY_PREFLIGHT}


class CorsPolicy:
    """Answers preflight requests and decorates ordinary cross-origin ones."""

    def __init__(
        self,
        allowed_origins: Iterable[str],
        allow_credentials: bool = False,
        allowed_methods: Iterable[str] = ("GET", "HEAD", "POST", "PATCH", "DELETE"),
        allowed_headers: Iterable[str] = ("authorization", "content-type"),
        max_age: int = 600,
        expose_headers: Iterable[str] = _EXPOSED,
    ) -> None:
        self._origins = frozenset(allowed_origins)
        self._any = self._origins == {"*"}
        if "*" in self._origins and (allow_credentials or not self._any):
            raise ValueError('"*" must stand alone and excludes credentials')
        if "null" in self._origins:
            raise ValueError('the "null" origin cannot be allowed')
        self._credentials = allow_credentials
        self._methods = tuple(dict.fromkeys(allowed_methods))
        self._headers = frozenset(name.lower() for name in allowed_headers)
        self._max_age = str(max_age)
        self._expose = ", ".join(expose_headers)

    @classmethod
    def from_config(cls, config: CorsConfig) -> CorsPolicy:
        return cls(
            config.allowed_origins,
            config.allow_credentials,
            config.allowed_methods,
            config.allowed_headers,
            config.max_age,
        )

    def allows(self, origin: str | None) -> bool:
        return origin is not None and (self._any or origin in self._origins)

    def _origin_headers(self, origin: str) -> dict[str, str]:
        if self._any:
            return {"Access-Control-Allow-Origin": "*"}
        headers = {"Access-Control-Allow-Origin": origin}
        if self._credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def simple(self, origin: str | None) -> dict[str, str]:
        """Headers to add to an ordinary (non-preflight) response."""
        headers = {} if self._any else {"Vary": "Origin"}
        if origin is None or not self.allows(origin):
            return headers
        headers.update(self._origin_headers(origin))
        if self._expose:
            headers["Access-Control-Expose-Headers"] = self._expose
        return headers

    def preflight(
        self,
        origin: str | None,
        request_method: str | None,
        request_headers: str | None,
    ) -> dict[str, str]:
        """Headers answering an OPTIONS preflight; raises :class:`CorsRefusedError`."""
        if origin is None or not self.allows(origin):
            raise CorsRefusedError("origin not allowed")
        if request_method is None or request_method not in self._methods:
            raise CorsRefusedError("method not allowed")
        requested = [
            name.strip().lower()
            for name in (request_headers or "").split(",")
            if name.strip()
        ]
        if refused := [name for name in requested if name not in self._headers]:
            raise CorsRefusedError(
                f"headers not allowed: {', '.join(n[:40] for n in refused[:5])}"
            )

        headers = self._origin_headers(origin)
        headers["Access-Control-Allow-Methods"] = ", ".join(self._methods)
        if requested:
            headers["Access-Control-Allow-Headers"] = ", ".join(requested)
        headers["Access-Control-Max-Age"] = self._max_age
        headers["Vary"] = _VARY_PREFLIGHT
        return headers
