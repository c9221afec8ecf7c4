"""The HTTP service: ``POST /segment`` assigns customers, ``GET /model`` says what the
segments are, ``GET /healthz`` answers while the process serves.

Starlette routes, msgspec decodes and encodes (it refuses the NaN and Infinity tokens that
Python's ``json`` accepts, and is several times faster), and the model's ``assign`` answers
in about 10 µs a customer, inline on the event loop for a small body (a thread hop would
cost more than the work), in a worker thread for a large one. Client mistakes are a 4xx
with ``{"error": "..."}`` naming the field (and the item of an array); the server never
answers 500 to client input and keeps serving.
"""

import hmac
import sys
import traceback
from contextlib import asynccontextmanager

import anyio
import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Route

from ..errors import DataError
from .holder import ItemError, ModelHolder

MAX_BODY = 10 * 2**20  # bytes of a request body: about 40,000 customers
# A body above this many bytes (some 250 customers, a few ms of work) is answered in a worker
# thread: the event loop goes on with other requests (Python switches threads every 5 ms)
# rather than wait up to a second for a body of 40,000 customers.
INLINE_BYTES = 64 * 1024
_JSON = "application/json"


class ClientError(Exception):
    """A request the client must change: its HTTP status and what to change."""

    def __init__(self, status, message, item=None):
        super().__init__(message)
        self.status, self.message, self.item = status, message, item


def create_app(model_path, token=None, max_body=MAX_BODY, poll_seconds=1.0):
    """The Starlette app serving ``model_path`` (loaded now: a FastsegError says why it
    cannot be), its file polled every ``poll_seconds`` and swapped in when it changes.

    ``token``: requests to /segment and /model must send ``Authorization: Bearer <token>``
    (None: no check; the CLI decides when that is allowed). ``max_body``: bytes of a body.
    """
    holder = ModelHolder(model_path, poll_seconds)
    secret = None if token is None else token.encode()

    def authorized(request):
        if secret is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given.strip().encode("latin-1")  # (Starlette decodes header bytes as latin-1)
        return scheme.lower() == "bearer" and hmac.compare_digest(given, secret)

    async def segment(request):
        if not authorized(request):
            return _unauthorized()
        served = holder.current  # this request's model, whatever is swapped in meanwhile
        try:
            body = await _body(request, max_body)
            if len(body) <= INLINE_BYTES:
                return _answer(served, body)
            return await anyio.to_thread.run_sync(_answer, served, body)
        except ItemError as exc:
            return _error(422, str(exc), exc.item)
        except DataError as exc:
            return _error(422, str(exc))
        except ClientError as exc:
            return _error(exc.status, exc.message, exc.item)

    async def model(request):
        if not authorized(request):
            return _unauthorized()
        return Response(holder.current.description, media_type=_JSON)

    async def healthz(request):
        return Response(b'{"status":"ok"}', media_type=_JSON)

    @asynccontextmanager
    async def lifespan(app):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(holder.watch)
            yield
            tasks.cancel_scope.cancel()

    app = Starlette(
        routes=[
            Route("/segment", segment, methods=["POST"]),
            Route("/model", model, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.holder = holder
    return app


async def _body(request, limit):
    """The request's body, refused (415, 413) before it is read whole when it cannot be
    JSON or is over ``limit`` bytes."""
    media = request.headers.get("content-type")
    if media is not None:
        media = media.partition(";")[0].strip().lower()
        if media != _JSON and not media.endswith("+json"):
            raise ClientError(
                415, f"send JSON with Content-Type: {_JSON}, not {media or '(empty)'}"
            )
    length = request.headers.get("content-length", "")
    too_big = f"the body is over the limit of {limit:,} bytes (--max-body): send fewer customers"
    if length.isdigit() and int(length) > limit:
        raise ClientError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ClientError(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(served, body):
    """The response to a body of customers (the errors say what to change)."""
    doc = _decode(body)
    if isinstance(doc, dict):
        return _json(served.assign(doc))
    if isinstance(doc, list):
        return _json(served.assign_many(doc))
    raise ClientError(
        422, f"send one customer (a JSON object) or an array of them, not {_kind(doc)}"
    )


def _decode(body):
    """JSON to Python values; NaN, Infinity and numbers beyond a float are refused."""
    try:
        return msgspec.json.decode(body)
    except msgspec.ValidationError as exc:  # valid JSON msgspec will not hold: 1e400
        raise ClientError(422, f"{exc}: numbers must be within ±1.8e308") from None
    except msgspec.DecodeError as exc:
        at = _position(str(exc))
        hint = ""
        if at is not None and body[at : at + 4].lstrip(b"+-")[:3].lower() in (b"nan", b"inf"):
            hint = " (JSON has no NaN or Infinity: send null for a missing value)"
        raise ClientError(400, f"the body is not valid JSON: {exc}{hint}") from None
    except RecursionError:
        raise ClientError(400, "the body is not valid JSON: nested too deeply") from None


def _position(message):
    """The byte offset msgspec names in an error ("... (byte 6)"), or None."""
    _, found, rest = message.rpartition("(byte ")
    number = rest.rstrip(")")
    return int(number) if found and number.isdigit() else None


def _kind(doc):
    return {str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(doc), "null"
    )


def _json(answer):
    return Response(msgspec.json.encode(answer), media_type=_JSON)


def _error(status, message, item=None, headers=None):
    doc = {"error": message} if item is None else {"error": message, "item": item}
    return Response(msgspec.json.encode(doc), status, headers, media_type=_JSON)


def _unauthorized():
    return _error(
        401,
        "missing or wrong token: send the header Authorization: Bearer <token>",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _http_error(request, exc):
    """Starlette's own 404 and 405, as JSON like every other error."""
    return _error(exc.status_code, exc.detail, headers=exc.headers)


async def _internal_error(request, exc):
    """A bug in fastseg, not the client's input: a JSON 500, the traceback on stderr."""
    traceback.print_exception(exc, file=sys.stderr)
    return _error(500, f"internal error ({type(exc).__name__}): this is a bug in fastseg")
