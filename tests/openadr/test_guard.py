"""The guard in front of the XML parser: refused bodies never reach libxml2's schema parser."""

from __future__ import annotations

import codecs
import subprocess
import sys
import textwrap

import pytest

from custom_components.loadshed_ven.openadr.errors import VtnMessageRefused, VtnUnknownError
from custom_components.loadshed_ven.openadr.guard import (
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_MESSAGE,
    MAX_REPORT_REQUESTS,
    check_body,
)
from tests.openadr.raw_vtn import distribution, event

ENTITY_DTD = '<!DOCTYPE oadr:oadrPayload [<!ENTITY a "E1">]>'
LAUGHS_DTD = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)


def valid_body() -> str:
    return distribution([event("E1")]).decode()


def with_dtd(dtd: str, *, before: str = "") -> str:
    """A valid distribution with ``dtd`` after the XML declaration and ``&a;`` as event id."""
    text = valid_body()
    declaration_end = text.index("?>") + 2
    text = text[:declaration_end] + before + dtd + text[declaration_end:]
    return text.replace("<ei:eventID>E1</ei:eventID>", "<ei:eventID>&a;</ei:eventID>")


def test_valid_bodies_pass_in_every_supported_encoding() -> None:
    text = valid_body()
    check_body(text.encode())
    check_body(codecs.BOM_UTF8 + text.encode())
    check_body(codecs.BOM_UTF16_LE + text.replace("utf-8", "UTF-16").encode("utf-16-le"))
    check_body(b"")  # an empty body is no XML at all: nothing to refuse


@pytest.mark.parametrize(
    "body",
    [
        with_dtd(ENTITY_DTD).encode(),
        with_dtd(LAUGHS_DTD).encode(),
        ("\n  \t" + with_dtd(ENTITY_DTD)).encode(),
        codecs.BOM_UTF8 + with_dtd(ENTITY_DTD).encode(),
        with_dtd(ENTITY_DTD, before="<!-- harmless -->").encode(),
        with_dtd(ENTITY_DTD, before="<?pi data?>").encode(),
        with_dtd(ENTITY_DTD.lower()).encode(),
        codecs.BOM_UTF16_LE + with_dtd(ENTITY_DTD).replace("utf-8", "UTF-16").encode("utf-16-le"),
        codecs.BOM_UTF16_BE + with_dtd(ENTITY_DTD).replace("utf-8", "UTF-16").encode("utf-16-be"),
        with_dtd(ENTITY_DTD).replace("utf-8", "UTF-16").encode("utf-16-le"),
        with_dtd(ENTITY_DTD).replace("utf-8", "UTF-16").encode("utf-16-be"),
        codecs.BOM_UTF32_LE + with_dtd(ENTITY_DTD).replace("utf-8", "UTF-32").encode("utf-32-le"),
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
    ],
    ids=[
        "entity",
        "billion-laughs",
        "leading-whitespace",
        "utf8-bom",
        "comment-first",
        "processing-instruction-first",
        "lower-case",
        "utf16le-bom",
        "utf16be-bom",
        "utf16le-no-bom",
        "utf16be-no-bom",
        "utf32-bom",
        "no-declaration",
    ],
)
def test_body_with_dtd_is_refused_before_schema_validation(body: bytes) -> None:
    with pytest.raises(VtnMessageRefused, match="declaration") as caught:
        check_body(body)
    assert caught.value.kind == "declaration"
    assert isinstance(caught.value, VtnUnknownError)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"<?xml version='1.0' encoding='UTF-7'?>+ADw-!DOCTYPE", "encoding"),
        (b"<?xml version='1.0' encoding='IBM037'?><x/>", "encoding"),
        (
            codecs.BOM_UTF16_LE + "<?xml version='1.0' encoding='utf-8'?><x/>".encode("utf-16-le"),
            "encoding",
        ),
        (codecs.BOM_UTF8 + b"<x>\xff\xfe</x>", "encoding"),
        (b" " * (MAX_BODY_BYTES + 1), "size"),
    ],
    ids=["utf7", "ebcdic", "utf16-declaring-utf8", "bad-utf8", "oversize"],
)
def test_unreadable_or_oversized_body_is_refused(body: bytes, kind: str) -> None:
    with pytest.raises(VtnMessageRefused) as caught:
        check_body(body)
    assert caught.value.kind == kind
    assert str(caught.value).startswith("The VTN's message was refused unparsed: ")


def test_too_many_events_or_report_requests_are_refused() -> None:
    one = valid_body()
    start = one.index("<oadr:oadrEvent>")
    end = one.index("</oadr:oadrEvent>") + len("</oadr:oadrEvent>")
    many = one[:start] + one[start:end] * (MAX_EVENTS_PER_MESSAGE + 1) + one[end:]
    with pytest.raises(VtnMessageRefused, match=f"{MAX_EVENTS_PER_MESSAGE + 1:,} events"):
        check_body(many.encode())
    requests = "<oadr:oadrReportRequest></oadr:oadrReportRequest>" * (MAX_REPORT_REQUESTS + 1)
    with pytest.raises(VtnMessageRefused) as caught:
        check_body(f"<oadr:oadrCreateReport>{requests}</oadr:oadrCreateReport>".encode())
    assert caught.value.kind == "report_requests"


def test_receive_refuses_entity_dtd_and_the_process_survives() -> None:
    """In a child process: the body that crashed libxml2 is refused, the child exits 0."""
    body = with_dtd(ENTITY_DTD).encode()
    script = textwrap.dedent(
        """
        import asyncio, sys
        from custom_components.loadshed_ven.openadr.client import VenClient
        from custom_components.loadshed_ven.openadr.errors import VtnMessageRefused

        async def main():
            client = VenClient(ven_name="v", vtn_url="http://127.0.0.1:9/x",
                               show_fingerprint=False)
            try:
                await client.receive(sys.stdin.buffer.read())
            except VtnMessageRefused as err:
                print("refused:", err.kind)
            await client.stop()

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=body,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert result.stdout.decode().strip() == "refused: declaration"
