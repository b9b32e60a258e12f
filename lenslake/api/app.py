"""The read API: published gold and the catalogue over HTTP, under the same access policy as ``lenslake sql``.

Every route but ``/healthz`` needs ``Authorization: Bearer <key>``; the key decides the caller's role
(``lenslake.api.keys``), nothing the client sends otherwise does. Table reads go through
``lenslake.privacy.access.read_rows``, the gate ``lenslake sql`` uses: denied tables refused (403), denied columns
absent, masked columns '***', gold read at its published version, every read of a PII-bearing table appended to
``privacy.sql_access_log`` with entry point ``api`` and the key's name as principal. Products are served for
downstream services (the recommendation service) from the catalogue: the product row (through the same gate), its
current price and availability (``lenslake.catalog.serving.CatalogCache``, kept right by the invalidations).

Inputs are validated, not caught: each error is a one-line JSON ``{"error": "..."}`` with a 4xx status.
"""

import base64
import datetime as dt
import decimal
import logging
import math
import threading
from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lenslake.api.keys import Caller, digest, load_api_keys
from lenslake.privacy.access import (
    AccessDenied,
    BadRead,
    NotReadable,
    Policy,
    TableDenied,
    UnknownTable,
    pii_bearing,
    read_rows,
)
from lenslake.settings import Settings

log = logging.getLogger("lenslake.api")

MAX_LIMIT = 1000  # rows per page
MAX_OFFSET = 10**12
MAX_FILTERS = 16
SKU_PATTERN = r"^[A-Z0-9]{1,32}$"
PRODUCT_TABLES = ("catalog.products", "catalog.prices", "catalog.inventory")
STATUS = {UnknownTable: 404, NotReadable: 404, TableDenied: 403, BadRead: 400}


def _one_line(message) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _error(status: int, message, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": _one_line(message)}, status_code=status, headers=headers)


def _plain(v):
    """A value of an Arrow row as JSON can carry it (no NaN: JSON has none)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v) if v.is_finite() else None
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _price(p, on: dt.date) -> dict | None:
    """The cached price version with the price in effect on ``on`` (recomputed per request: a cached entry outlives
    the day it was read on, a promotion window does not)."""
    if p is None:
        return None
    promo = (p.promo_price is not None and (p.promo_from is None or p.promo_from <= on)
             and (p.promo_to is None or on <= p.promo_to))
    return _plain({"currency": p.currency, "price": p.promo_price if promo else p.list_price, "on": on,
                   "list_price": p.list_price, "promo_price": p.promo_price, "promo_from": p.promo_from,
                   "promo_to": p.promo_to, "tiers": p.tiers, "valid_from": p.valid_from})


def create_app(settings: Settings) -> FastAPI:
    """The API over the lake of ``settings``. Keys are loaded (the dev key file generated) here, so a bad key setting
    stops the server at start, not at the first request."""
    policy = Policy.load(settings)
    callers = load_api_keys(settings, sorted(policy.roles))
    app = FastAPI(title="lenslake read API", version="1", docs_url=None, redoc_url=None)
    cache_lock = threading.Lock()
    cache = {}

    def catalog_cache():
        from lenslake.catalog.serving import CatalogCache
        from lenslake.delta import DeltaStore

        if "catalog" not in cache:
            cache["catalog"] = CatalogCache(DeltaStore(settings.tables_dir))
        return cache["catalog"]

    def caller(request: Request) -> Caller:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        found = callers.get(digest(key.strip()))
        if found is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        return found

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return _error(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path"))
        return _error(422, f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid"))

    @app.exception_handler(AccessDenied)
    async def refused(request: Request, exc: AccessDenied):
        return _error(next((s for t, s in STATUS.items() if isinstance(exc, t)), 403), exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug, not an answer: logged with its traceback
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.get("/v1/tables")
    def tables(who: Annotated[Caller, Depends(caller)]):
        """The tables the caller's role may read: columns (denied ones left out) with their treatment."""
        from lenslake import publish
        from lenslake.delta import DeltaStore
        from lenslake.tables import catalogue

        current = Policy.load(settings)
        store = DeltaStore(settings.tables_dir)
        gold = set(publish.published_tables())
        out = []
        for name, spec in catalogue().items():
            if current.table(who.role, name) != "allow":
                continue
            treatments = current.columns(who.role, spec)
            version = publish.published_version(store, name) if name in gold else None
            out.append({"table": name, "description": spec.description, "pii_bearing": pii_bearing(spec),
                        "readable": store.exists(name) and (name not in gold or version is not None),
                        "published_version": version,
                        "columns": [{"name": c.name, "type": c.type, "treatment": treatments[c.name]}
                                    for c in spec.columns if treatments[c.name] != "deny"]})
        return {"role": who.role, "tables": out}

    @app.get("/v1/tables/{table}")
    def rows(request: Request, table: Annotated[str, Path(max_length=200)], who: Annotated[Caller, Depends(caller)],
             limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100, offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0):
        """Rows of one table as the caller's role sees them; other query parameters are filters
        (``column=value``, equality, on readable unmasked columns)."""
        filters = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
        if len(filters) > MAX_FILTERS:
            raise BadRead(f"at most {MAX_FILTERS} filters")
        found, columns = read_rows(settings, who.role, table, filters=filters, limit=limit + 1, offset=offset,
                                   principal=who.name)
        more = found.num_rows > limit
        return {"table": table, "role": who.role, "columns": columns, "limit": limit, "offset": offset,
                "next_offset": offset + limit if more else None,
                "rows": _plain(found.slice(0, limit).to_pylist())}

    @app.get("/v1/products/{sku}")
    def product(sku: Annotated[str, Path(pattern=SKU_PATTERN)], who: Annotated[Caller, Depends(caller)]):
        """A product for downstream services: its catalogue row, current price and availability per location."""
        current = Policy.load(settings)
        denied = [t for t in PRODUCT_TABLES if current.table(who.role, t) != "allow"]
        if denied:
            raise TableDenied(f"role {who.role} may not read {', '.join(denied)}")
        found, _ = read_rows(settings, who.role, "catalog.products", filters={"sku": sku}, limit=1,
                             principal=who.name)
        if not found.num_rows:  # checked first: the cache holds known SKUs only
            raise HTTPException(404, f"no product {sku}")
        with cache_lock:
            served = catalog_cache()
            price, stock = served.price(sku), dict(served.stock(sku))
        return {"sku": sku, "product": _plain(found.to_pylist()[0]), "price": _price(price, settings.now().date()),
                "availability": stock}

    return app
