"""The first check of every body the VTN sends, before anything parses it.

libxml2 has crashed the whole process (SIGSEGV) validating a body whose DTD declares an
entity, and an OpenADR 2.0b payload never needs a DTD. So a body is refused, unparsed, when:

* it is larger than :data:`MAX_BODY_BYTES`;
* its encoding is not one this check can read reliably (UTF-8, UTF-16 or UTF-32 with a
  byte-order mark or detectable from ``<?xml``, or an ASCII-compatible declared encoding);
* it contains any markup declaration (``<!DOCTYPE``, ``<!ENTITY``, ``<!ELEMENT`` ...). Only
  comments (``<!--``) and CDATA sections (``<![CDATA[``) may start with ``<!``; a declaration
  hidden inside a comment or CDATA is refused too, which costs a valid 2.0b payload nothing;
* it lists more than :data:`MAX_EVENTS_PER_MESSAGE` events or more than
  :data:`MAX_REPORT_REQUESTS` report requests.
"""

from __future__ import annotations

import codecs
import re

from .errors import VtnMessageRefused

# A 1,440-interval event is about 0.4 MB and 1,000 small events about 1.4 MB.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_EVENTS_PER_MESSAGE = 1000
# This VEN offers one report; a VTN has no reason to request it more than a few times.
MAX_REPORT_REQUESTS = 10

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# "<?" (or "<" and a name) in the wide encodings, when there is no byte-order mark.
_WIDE_STARTS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
# Encodings in which every ASCII character is its own single byte, so a scan of the bytes as
# Latin-1 sees all markup. Anything else (UTF-7, EBCDIC, ...) is refused.
_ASCII_COMPATIBLE = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252"}
)
_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DECLARED_TEXT = re.compile(r"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# "<!" not followed by "--" (comment) or "[CDATA[" (CDATA section).
_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)")
_EVENT = re.compile(r"<(?:[\w.-]+:)?eiEvent\b")
_REPORT_REQUEST = re.compile(r"<(?:[\w.-]+:)?oadrReportRequest\b")


def _text(content: bytes) -> str:
    """Return the body as text in which markup can be searched, or raise."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return _decode(content[len(bom) :], codec, wide=codec != "utf-8")
    for start, codec in _WIDE_STARTS:
        if content.startswith(start):
            return _decode(content, codec, wide=True)
    match = _DECLARED.match(content)
    declared = match.group(1).decode("ascii").lower() if match else "utf-8"
    if declared not in _ASCII_COMPATIBLE:
        raise VtnMessageRefused(f"it declares the unsupported encoding {declared!r}", "encoding")
    # Latin-1 maps every byte to one character: markup is found whatever the real encoding.
    return content.decode("latin-1")


def _decode(content: bytes, codec: str, *, wide: bool) -> str:
    try:
        text = content.decode(codec)
    except UnicodeDecodeError as err:
        raise VtnMessageRefused(f"it is not valid {codec.upper()}", "encoding") from err
    match = _DECLARED_TEXT.match(text)
    if wide and match and not match.group(1).lower().startswith(codec[:6]):
        # A wide body declaring a narrow encoding would be read differently by libxml2.
        raise VtnMessageRefused(
            f"it is {codec.upper()} but declares the encoding {match.group(1)!r}", "encoding"
        )
    return text


def check_body(content: bytes) -> None:
    """Refuse a VTN body that must not reach the XML parser; return None when it may.

    Raises :class:`VtnMessageRefused` whose message says why. Cheap (one linear scan), so it
    can run in the event loop.
    """
    if len(content) > MAX_BODY_BYTES:
        raise VtnMessageRefused(
            f"it is {len(content):,} bytes, more than the limit of {MAX_BODY_BYTES:,}", "size"
        )
    text = _text(content)
    if "\x00" in text:
        raise VtnMessageRefused("it contains NUL characters", "encoding")
    declaration = _DECLARATION.search(text)
    if declaration is not None:
        snippet = text[declaration.start() : declaration.start() + 12]
        raise VtnMessageRefused(
            f"it contains a document type or entity declaration ({snippet!r}); "
            "OpenADR 2.0b messages never carry one",
            "declaration",
        )
    events = len(_EVENT.findall(text))
    if events > MAX_EVENTS_PER_MESSAGE:
        raise VtnMessageRefused(
            f"it lists {events:,} events, more than the limit of {MAX_EVENTS_PER_MESSAGE:,}",
            "events",
        )
    requests = len(_REPORT_REQUEST.findall(text))
    if requests > MAX_REPORT_REQUESTS:
        raise VtnMessageRefused(
            f"it contains {requests:,} report requests, more than the limit of "
            f"{MAX_REPORT_REQUESTS:,}",
            "report_requests",
        )
