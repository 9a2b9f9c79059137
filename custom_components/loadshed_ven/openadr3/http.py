"""Bounded JSON over HTTP with a 3.x VTN, on a shared aiohttp session.

Every body is read with a size limit (decompressed bytes counted, so a small gzip bomb cannot
grow past it) and decoded in the event loop only when small; a bigger one goes to the
``run_blocking`` executor callable. Integers with more digits than :data:`MAX_INT_DIGITS`
decode as infinity instead of failing the whole body (Python refuses to convert very long
ones), so one absurd value refuses one event, not the listing. Every failure becomes a
:class:`VtnError` with a sentence a person can act on.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from ..openadr.errors import (
    VtnCannotConnect,
    VtnError,
    VtnMessageRefused,
    VtnUnknownError,
    transport_error,
)
from ..openadr.factory import RunBlocking
from .errors import VtnCredentialsRefused, VtnForbidden, VtnProgramNotFound
from .events import AmbiguousObject, event_id_of

if TYPE_CHECKING:
    from .auth import TokenSource

MAX_BODY_BYTES = 4 * 1024 * 1024
PAGE_SIZE = 50
MAX_PROGRAMS = 100
# Bodies up to this size are decoded in the event loop (well under a millisecond).
SMALL_BODY_BYTES = 64 * 1024
MAX_INT_DIGITS = 40
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5, sock_read=15)
_CHUNK = 64 * 1024
_DETAIL_CHARS = 120


def _parse_int(text: str) -> int | float:
    if len(text) <= MAX_INT_DIGITS:
        return int(text)
    return -math.inf if text.startswith("-") else math.inf


# One object per constant: dicts holding the same NaN then compare equal (identity first).
_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | AmbiguousObject:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    repeated: list[str] = []
    for key, _value in pairs:
        if key in seen:
            repeated.append(key)
        seen.add(key)
    return AmbiguousObject(repeated)


def decode_json(body: bytes) -> Any:
    """Decode a JSON body (UTF-8/16/32); raise :class:`VtnUnknownError` when it is not JSON.

    An object that names a key twice decodes as an :class:`AmbiguousObject`.
    """
    try:
        return json.loads(
            body,
            parse_int=_parse_int,
            parse_constant=_CONSTANTS.__getitem__,
            object_pairs_hook=_object,
        )
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError too
        reason = "it nests too deeply" if isinstance(err, RecursionError) else str(err)[:80]
        raise VtnUnknownError(f"The VTN's answer is not usable JSON: {reason}.") from err


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_BODY_BYTES) -> bytes:
    """The response body, refused unread past ``limit`` bytes."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise VtnMessageRefused(
            f"it is {declared:,} bytes, more than the limit of {limit:,}", "size"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise VtnMessageRefused(f"it is more than the limit of {limit:,} bytes", "size")
        chunks.append(chunk)
    return b"".join(chunks)


async def decode(body: bytes, run_blocking: RunBlocking | None) -> Any:
    """Decode ``body``, off the event loop when it is big and an executor is given."""
    if len(body) <= SMALL_BODY_BYTES or run_blocking is None:
        return decode_json(body)
    return await run_blocking(functools.partial(decode_json, body))


def problem_detail(document: object) -> str:
    """A short, printable summary of an RFC 7807 problem body (or '')."""
    if not isinstance(document, Mapping):
        return ""
    parts = [document.get(key) for key in ("title", "detail", "error", "error_description")]
    text = "; ".join(p for p in parts if isinstance(p, str) and p.strip())
    return "".join(c if c.isprintable() else " " for c in text)[:_DETAIL_CHARS]


def status_error(status: int, what: str, url: str, detail: str = "") -> VtnError:
    """A :class:`VtnError` for a status other than 2xx/401 (401 is the caller's business)."""
    suffix = f" ({detail})" if detail else ""
    if status == 403:
        return VtnForbidden(
            f"The VTN refused {what} with HTTP 403{suffix}: this client may not do that "
            "(not enrolled in the program, or the wrong scope)."
        )
    if status in (404, 405):
        return VtnCannotConnect(
            f"The VTN answered HTTP {status} for {url}{suffix}. Check the base URL; it usually "
            "ends in /openadr3/3.1.0 or similar."
        )
    return VtnUnknownError(f"The VTN answered {what} with HTTP {status}{suffix}.")


def where(url: str) -> str:
    """The host and port of ``url``, for messages."""
    return urlsplit(url).netloc or url


class VtnHttp:
    """Bearer-authenticated JSON requests to one VTN base URL.

    A 401 drops the token, gets a new one and tries once more; a second 401 raises
    :class:`VtnCredentialsRefused`. ``on_contact`` hears of every answer from the VTN.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        auth: TokenSource,
        *,
        run_blocking: RunBlocking | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._run_blocking = run_blocking
        self._max_body = max_body

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` and return the decoded JSON."""
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON object to ``path`` and return the decoded answer (None when empty)."""
        return await self.request("POST", path, body=body)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        """One request, retried once with a fresh token after a 401."""
        url = f"{self.base_url}{path}"
        what = f"{method} {path}"
        for attempt in range(2):
            token = await self._auth.token()
            status, payload = await self._send(method, url, token, params, body)
            if status == 401:
                self._auth.invalidate(token)
                if attempt == 0:
                    continue
                raise VtnCredentialsRefused(
                    f"The VTN refused {what} with HTTP 401 even with a new access token. "
                    "Check this VEN's client id and secret (and scope)."
                )
            if not 200 <= status < 300:
                raise status_error(status, what, url, problem_detail(_quiet_decode(payload)))
            if not payload.strip():
                return None
            return await decode(payload, self._run_blocking)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=REQUEST_TIMEOUT,
                allow_redirects=False,
            ) as response:
                if response.status >= 400:
                    # Only a problem summary is wanted from an error body.
                    return response.status, await _error_body(response)
                return response.status, await read_body(response, self._max_body)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise transport_error(err, url, had_contact=True) from err


async def _error_body(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await read_body(response, SMALL_BODY_BYTES)
    except VtnMessageRefused:
        return b""


def _quiet_decode(body: bytes) -> object:
    if not body or len(body) > SMALL_BODY_BYTES:
        return None
    try:
        return decode_json(body)
    except VtnUnknownError:
        return None


async def list_all(
    http: VtnHttp, path: str, params: Mapping[str, str], *, page: int, most: int
) -> list[Any]:
    """Every item of a paged 3.x listing (``skip``/``limit``), refused past ``most`` items.

    A VTN that ignores ``limit`` (longer page) or ``skip`` (the same page again) is read as
    having sent everything at once.
    """
    items: list[Any] = []
    first_ids: set[str] = set()
    for skip in range(0, most + page, page):
        chunk = await http.get(path, {**params, "skip": str(skip), "limit": str(page)})
        if not isinstance(chunk, list):
            kind = "nothing" if chunk is None else f"a JSON {type(chunk).__name__}"
            raise VtnUnknownError(f"The VTN answered GET {path} with {kind}, not a list.")
        ids = {
            item["id"]
            for item in chunk
            if isinstance(item, Mapping) and isinstance(item.get("id"), str)
        }
        if skip and chunk and ids <= first_ids:
            break  # skip ignored: the first page again
        first_ids = first_ids or ids
        items.extend(chunk)
        if len(items) > most:
            raise VtnMessageRefused(
                f"GET {path} lists more than {most:,} items, the most this VEN reads", "events"
            )
        if len(chunk) != page:
            break
    return items


async def find_programs(http: VtnHttp, wanted: str | None) -> tuple[str, ...]:
    """The ids of the programs to poll: the one named ``wanted`` (name or id), or all."""
    listing = await list_all(http, "/programs", {}, page=PAGE_SIZE, most=MAX_PROGRAMS)
    found: list[str] = []
    names: list[str] = []
    for program in listing:
        program_id = event_id_of(program)  # same rules as an event id
        if program_id is None or not isinstance(program, Mapping):
            continue
        name = program.get("programName")
        names.append(name if isinstance(name, str) else program_id)
        if wanted is None or wanted in (program_id, name):
            found.append(program_id)
    if wanted is not None and not found:
        shown = ", ".join(repr(n[:40]) for n in names[:10]) or "none"
        raise VtnProgramNotFound(
            f"The VTN lists no program named {wanted!r} for this client (it lists: {shown}). "
            "Check the program name, or ask the VTN operator to enrol this VEN."
        )
    return tuple(found)
