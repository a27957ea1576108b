"""The HTTP application: PostgREST-style URLs, one transaction per request.

A request passes, in order: the per-address rate limit (before any signature
is checked), authentication, the per-subject limit, the body checks, the URL
grammar against the schema cache, and one database transaction as the
caller's role. Every error becomes JSON with a stable code; nothing from the
database's own error text reaches the client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import psycopg
from limits.aio.storage import Storage
from psycopg import sql
from psycopg.conninfo import make_conninfo
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from . import grammar
from . import sql as builder
from .asgi import ApiApplication, Scope
from .audit import log_request
from .auth import Authenticator, Identity
from .catalog import SCHEMA_QUERY, parse_schema
from .config import GatewayConfig
from .cors import CorsPolicy, CorsRefusedError
from .database import Database, Query, missing_memberships
from .errors import (
    GatewayError,
    NotFoundError,
    PayloadError,
    RateLimitedError,
    RequestError,
    UnavailableError,
)
from .metrics import Metrics, metrics_app
from .openapi import openapi_document
from .ratelimit import RateLimiter
from .schema import SchemaCache
from .statements import StatementCache

__all__ = [
    "ALL_METHODS",
    "Gateway",
    "connection_string",
    "create_app",
    "create_apps",
]

logger = logging.getLogger("pgfortress_gateway")

SCHEMA_REFRESH_SECONDS = 60
CLIENT_CLOSED = 499
ALL_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "PUT", "TRACE"]
VISIBLE_QUERY = """
SELECT
  (SELECT coalesce(array_agg(c.relname::text), '{}')
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = %s AND c.relname = ANY(%s::text[])
     AND has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')),
  (SELECT coalesce(array_agg(DISTINCT p.proname::text), '{}')
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = %s AND p.proname = ANY(%s::text[])
     AND has_function_privilege(p.oid, 'EXECUTE'))
"""
_WRITE_METHODS = {"POST", "PATCH"}


class Gateway:
    """Everything one running gateway holds: pool, keys, limits, schema cache."""

    def __init__(
        self,
        config: GatewayConfig,
        database: Database | None = None,
        counters: Storage | None = None,
    ):
        self.config = config
        self.database = database or Database(
            connection_string(config),
            min_size=config.database.pool_min_size,
            max_size=config.database.pool_max_size,
            timeout=float(config.database.connect_timeout),
        )
        self.authenticator = Authenticator.from_config(config)
        self.cors = CorsPolicy.from_config(config.cors)
        self.limiter = RateLimiter(config.limits, storage=counters)
        self.cache = SchemaCache(config.api.db_schema)
        self.metrics = Metrics()
        self._busy: dict[str, int] = {}
        self._per_caller = max(1, config.database.pool_max_size // 2)

    @property
    def cache(self) -> SchemaCache:
        return self._statements.cache

    @cache.setter
    def cache(self, cache: SchemaCache) -> None:
        # Statements composed against the old catalog go with it.
        self._statements = StatementCache(cache, self.config.api.max_rows)

    async def start(self) -> None:
        """Open the pool, check the memberships, load the schema; or refuse."""
        await self.database.open()
        roles = self._switchable_roles()
        missing = await self.database.missing_roles(roles)
        if missing:
            raise SystemExit(missing_memberships(missing, self.config.database.user))
        await self.refresh_schema()

    async def refresh_schema(self) -> None:
        document = await self.database.fetch_json(
            SCHEMA_QUERY, (self.config.api.db_schema,)
        )
        if document is None:
            raise SystemExit(
                f"schema {self.config.api.db_schema!r} does not exist or the "
                f"authenticator cannot see it; check [api] schema"
            )
        self.cache = parse_schema(document)
        logger.info(
            "schema %s: %d relations, %d functions",
            self.cache.schema,
            len(self.cache.relations),
            len(self.cache.functions),
        )

    async def keep_schema_fresh(self) -> None:
        """Reload the schema on ``NOTIFY pgrst, 'reload schema'`` and every minute.

        The channel and payload are PostgREST's, so migration tooling written
        for PostgREST reloads this gateway too. Without a listening connection
        (the database is down), the interval alone keeps the cache fresh.
        """
        while True:
            try:
                await self._listen_for_reloads()
            except (psycopg.Error, OSError) as error:
                logger.warning("schema notifications unavailable: %s", error)
                await asyncio.sleep(SCHEMA_REFRESH_SECONDS)
                await self._refresh_quietly()

    async def _listen_for_reloads(self) -> None:
        conninfo = connection_string(self.config)
        async with await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True
        ) as conn:
            await conn.execute("LISTEN pgrst")
            while True:
                async for notice in conn.notifies(timeout=SCHEMA_REFRESH_SECONDS):
                    if notice.payload in {"", "reload schema"}:
                        logger.info("schema reload requested by NOTIFY")
                        break
                await self._refresh_quietly()

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_schema()
        except (GatewayError, SystemExit) as error:
            # Keep serving with the last good cache; say why it is old.
            logger.warning("schema refresh failed: %s", error)

    def _switchable_roles(self) -> list[str]:
        api = self.config.api
        roles = set(api.allowed_roles)
        if api.anonymous_role:
            roles.add(api.anonymous_role)
        roles.update(key.role for key in self.config.api_keys)
        return sorted(roles)

    async def handle(self, request: Request) -> Response:
        started = time.monotonic()
        # Read once from the ASGI scope, with the meaning Starlette gives them.
        scope = request.scope
        method: str = scope["method"]
        path = _path(scope)
        client = _client(scope)
        headers = _headers(scope)
        origin = headers.get("origin")
        identity: Identity | None = None
        try:
            await self.limiter.check_address(client)
            if method == "OPTIONS":
                response = self._preflight(headers)
                return self._finish(method, path, client, response, None, started)
            identity = await self.authenticator.authenticate_async(
                headers.get("authorization"), headers.get("x-api-key")
            )
            await self.limiter.check_subject(identity.subject)
            slot = self._take_slot(identity, client)
            try:
                response = await self._dispatch(request, path, headers, identity)
            finally:
                self._give_slot(slot)
        except CorsRefusedError as refused:
            # A refused preflight gets no Access-Control-Allow-Origin: that
            # header would read as permission to the browser.
            response = _error_response(refused)
            response.headers.update(refused.headers)
            return self._finish(method, path, client, response, None, started)
        except GatewayError as error:
            response = _error_response(error)
        except ClientDisconnect:
            # Gone before its body arrived: nobody to answer; 499 in the audit
            # line and the metrics, as web servers log it.
            response = Response(status_code=CLIENT_CLOSED)
        except Exception:
            logger.exception("unexpected error on %s %s", method, path)
            response = _error_response(GatewayError("internal error"))
        extra = self.cors.simple(origin)
        if identity is not None and identity.kind != "anonymous":
            # An answer for one caller must never be served to another by a
            # shared cache.
            extra["Cache-Control"] = "private, no-store"
            vary = extra["Vary"] if "Vary" in extra else response.headers.get("Vary")
            extra["Vary"] = f"{vary}, Authorization" if vary else "Authorization"
        _add_headers(response, extra)
        return self._finish(method, path, client, response, identity, started)

    def _finish(
        self,
        method: str,
        path: str,
        client: str,
        response: Response,
        identity: Identity | None,
        started: float,
    ) -> Response:
        elapsed = time.monotonic() - started
        self.metrics.observe(method, response.status_code, elapsed)
        log_request(
            identity.subject if identity else None,
            identity.role if identity else None,
            method,
            path,
            response.status_code,
            elapsed * 1000,
            client,
        )
        return response

    def _take_slot(self, identity: Identity, client: str) -> str:
        """At most half the pool for one caller, so one cannot starve the rest;
        the caller's key, to give back with :meth:`_give_slot` when done."""
        # Callers without a subject (anonymous, or a token without "sub")
        # count per role and address: sharing one budget, one of them could
        # hold it all and shut the others out.
        key = identity.subject or f"role:{identity.role}@{client}"
        busy = self._busy.get(key, 0)
        if busy >= self._per_caller:
            raise RateLimitedError("too many requests in flight", retry_after=1)
        self._busy[key] = busy + 1
        return key

    def _give_slot(self, key: str) -> None:
        self._busy[key] -= 1
        if not self._busy[key]:
            del self._busy[key]

    def _preflight(self, headers: Mapping[str, str]) -> Response:
        allowed = self.cors.preflight(
            headers.get("origin"),
            headers.get("access-control-request-method"),
            headers.get("access-control-request-headers"),
        )
        return Response(status_code=204, headers=allowed)

    async def _dispatch(
        self,
        request: Request,
        path: str,
        headers: dict[str, str],
        identity: Identity,
    ) -> Response:
        path = path.strip("/")
        method = request.method
        if path == "" and method in {"GET", "HEAD"}:
            return JSONResponse(openapi_document(await self._visible(identity)))
        # What Starlette's query_params.multi_items() gives, parsed directly.
        query = request.scope["query_string"].decode("latin-1")
        params = parse_qsl(query, keep_blank_values=True)
        body = await self._body(request, headers) if method in _WRITE_METHODS else None
        api = self.config.api
        cache = self.cache
        try:
            if path.startswith("rpc/"):
                if method not in {"GET", "HEAD", "POST"}:
                    raise RequestError("call a function with GET or POST", status=405)
                name = path.removeprefix("rpc/")
                rpc = grammar.parse_rpc(
                    name, params, body, cache, headers, method=method
                )
                query = builder.build_rpc(rpc, cache, api.max_rows)
                row = await self._run(identity, query, read_only=method != "POST")
                result = row[0] if row else None
                if rpc.singular:
                    result = grammar.single_object(result or "[]")
                return _json("" if method == "HEAD" else result, 200)
            if "/" in path or not path:
                raise NotFoundError(f"no route for {path or '/'}")
            if method in {"GET", "HEAD"}:
                read = grammar.parse_read(path, params, headers, cache)
                statements = self._statements
                if statements.cache is not cache:  # reloaded since parsing
                    statements = StatementCache(cache, api.max_rows)
                row = await self._run(identity, statements.read(read), read_only=True)
                return _read_response(row, read, method == "HEAD")
            write: grammar.InsertRequest | grammar.UpdateRequest | grammar.DeleteRequest
            if method == "POST":
                write = grammar.parse_insert(path, params, headers, body, cache)
                query = builder.build_insert(write, cache)
            elif method == "PATCH":
                write = grammar.parse_update(path, params, headers, body, cache)
                query = builder.build_update(write, cache)
            elif method == "DELETE":
                write = grammar.parse_delete(path, params, headers, cache)
                query = builder.build_delete(write, cache)
            else:
                raise RequestError(f"method {method} is not supported here", status=405)
            row = await self._run(identity, query)
            if write.singular and row and row[0] is not None:
                # The statement touched exactly one row, or it failed and was
                # undone (see sql.py): answer that row as an object.
                row = (grammar.single_object(row[0]), *row[1:])
            return _write_response(row, 201 if method == "POST" else 200)
        except (GatewayError, psycopg.Error) as error:
            # Database errors only the request can cause that the database
            # layer leaves unmapped or maps too broadly: an unknown text search
            # configuration, a key twice in an upsert, a one-object write that
            # touched another number of rows (406, and undone).
            refused = builder.refusal(error)
            if refused is None:
                raise
            raise refused from error

    async def _visible(self, identity: Identity) -> SchemaCache:
        """The part of the schema the caller's role may use at all.

        The cache was read as the authenticator; describing relations and
        functions the caller cannot touch would only map the database for it.
        """
        cache = self.cache
        row = await self._run(
            identity,
            Query(
                sql.SQL(VISIBLE_QUERY),
                (
                    cache.schema,
                    list(cache.relations),
                    cache.schema,
                    list(cache.functions),
                ),
            ),
            read_only=True,
        )
        relations, functions = (row or ([], []))[:2]
        return SchemaCache(
            cache.schema,
            {k: v for k, v in cache.relations.items() if k in set(relations or [])},
            {k: v for k, v in cache.functions.items() if k in set(functions or [])},
        )

    async def _body(self, request: Request, headers: Mapping[str, str]) -> object:
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        declared = headers.get("content-length")
        if not kind and declared in (None, "0") and "transfer-encoding" not in headers:
            # No body at all (a function called without arguments, as
            # postgrest clients do): nothing to read and nothing to type.
            return None
        if kind != "application/json":
            raise PayloadError("send the body as application/json", status=415)
        limit = self.config.api.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadError(f"the body is larger than {limit} bytes", status=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadError(f"the body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks) or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise PayloadError("the body is not valid JSON", status=400) from None

    async def _run(
        self, identity: Identity, query: Any, *, read_only: bool = False
    ) -> tuple[Any, ...] | None:
        return await self.database.run_as(
            identity.role,
            identity.claims_json,
            Query(query.sql, query.params),
            self.config.api.statement_timeout_ms,
            read_only=read_only,
        )


def _path(scope: Scope) -> str:
    """``request.url.path``, escaped as Starlette escapes it, without building
    the whole URL (host header, scheme, query) that it parses again."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _client(scope: Scope) -> str:
    """``request.client.host``, or ``-`` when the server gives no address."""
    client = scope.get("client")
    if client is None:
        return "-"
    host: str = client[0]
    return host


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers as ``dict(request.headers)`` gives them: names in
    lower case (as ASGI sends them), the first of repeated headers."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return headers


def _add_headers(response: Response, extra: Mapping[str, str]) -> None:
    """``response.headers.update(extra)``, appending to the raw list when the
    response has no header of that name yet (always, on the usual path)."""
    raw = response.raw_headers
    present = {key for key, _ in raw}
    for name, value in extra.items():
        key = name.lower().encode("latin-1")
        if key in present:
            response.headers[name] = value  # replaced in place, as update does
        else:
            raw.append((key, value.encode("latin-1")))
            present.add(key)


def _json(body: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    text = body if isinstance(body, str) else json.dumps(body)
    return Response(
        text, status, headers=dict(headers or {}), media_type="application/json"
    )


def _read_response(row: tuple[Any, ...] | None, read: Any, head: bool) -> Response:
    body, total, returned = row if row else ("[]", None, 0)
    headers = {"Content-Range": grammar.content_range(read.offset, returned, total)}
    if read.singular:
        body = grammar.single_object(body)
    return _json("" if head else body, 200, headers)


def _write_response(row: tuple[Any, ...] | None, status: int) -> Response:
    body = row[0] if row else None
    if body is None:
        return Response(status_code=204 if status != 201 else 201)
    return _json(body, status)


def _error_response(error: GatewayError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimitedError | UnavailableError):
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pgfortress"'
    return JSONResponse(error.body(), error.status, headers=headers)


def connection_string(config: GatewayConfig) -> str:
    """The authenticator's libpq connection string: TLS, verify-full."""
    db = config.database
    return make_conninfo(
        host=db.host,
        port=db.port,
        dbname=db.dbname,
        user=db.user,
        password=db.password,
        sslmode="verify-full",
        sslrootcert=str(db.sslrootcert),
        connect_timeout=db.connect_timeout,
        application_name="pgfortress-gateway",
    )


def create_app(
    config: GatewayConfig, database: Database | None = None
) -> ApiApplication:
    """The public API application alone."""
    return create_apps(config, database)[0]


def create_apps(
    config: GatewayConfig,
    database: Database | None = None,
    *,
    counters: Storage | None = None,
) -> tuple[ApiApplication, Starlette]:
    """The public API and the private metrics/health application, sharing state.

    ``counters``: where the rate limits count, when not where
    ``limits.storage_uri`` says (the workers' shared memory)."""
    gateway = Gateway(config, database, counters)
    # Every path and method reaches the one handler: methods the gateway does
    # not serve (PUT, TRACE, CONNECT) get the same JSON 405 as its other errors.
    api = ApiApplication(gateway)
    return api, metrics_app(lambda: gateway.metrics, gateway.database.healthy)
