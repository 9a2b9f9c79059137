"""Turn a VTN body that passed the guard into ``(message_type, payload)``; blocking, pure.

Differences from openleadr's ``validate_xml_schema`` + ``parse_message``, each for a reason:

* The schema-validating parser never loads a DTD, resolves entities or touches the network,
  and there is one per thread, so bodies can be decoded in an executor.
* Identifiers stay text: openleadr turns every all-digit text into an int, so a vtnID ``12345``
  broke its event handling and an eventID ``007`` came back to the VTN as ``7``.
* The events of an oadrDistributeEvent are normalised one by one. A schema-valid but absurd
  value (``P99999999999Y`` overflows ``timedelta``) refuses only that event, and an event
  already known by (id, modification number) is not normalised again at all.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from lxml import etree  # type: ignore[import-untyped]
from openleadr import utils
from openleadr.messaging import NAMESPACES, XML_SCHEMA

from ..engine.schedule import normalise_event_id
from . import xml_compat
from .errors import VtnMessageRefused, VtnUnknownError, check_signature
from .guard import MAX_EVENTS_PER_MESSAGE, MAX_REPORT_REQUESTS

# Set on a distribution's payload: every listed event in message order (see ListedEvent).
LISTED_KEY = "listed_events"
# Prefix that keeps an identifier away from normalize_dict's int conversion; XML text can
# never contain NUL, so it cannot clash with a real value.
_MARK = "\x00"
_LOCAL = threading.local()
# signxml's verifier and openleadr's replay-protection nonce cache are shared module state.
_SIGNATURE_LOCK = threading.Lock()

type EventKey = tuple[str, int | str | None]


@dataclass(slots=True)
class ListedEvent:
    """One event of an oadrDistributeEvent, as far as it could be read.

    ``event`` is the normalised event dict, None when it was already known (the caller fills
    it in) or when it was refused (``error`` says why).
    """

    event_id: str | None
    modification_number: int | str | None
    raw_event_id: str | None
    response_required: str | None
    event: dict[str, Any] | None = None
    error: str | None = None

    @property
    def key(self) -> EventKey | None:
        """(id, modification number), None without a usable id."""
        if self.event_id is None:
            return None
        return self.event_id, self.modification_number


def _parser() -> Any:
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            schema=XML_SCHEMA,
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
            huge_tree=False,
        )
        _LOCAL.parser = parser
    return parser


def validate(content: bytes) -> Any:
    """Parse ``content`` with the 2.0b schema attached; raise :class:`VtnUnknownError`."""
    try:
        return etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as err:
        raise VtnUnknownError(f"The VTN sent a message that is not OpenADR 2.0b: {err}") from err


def modification_number(value: object) -> int | str | None:
    """A modification number as an int when it is one, else its text."""
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isdigit() else text
    if isinstance(value, int):
        return value
    return None


def _protect_ids(node: Any) -> Any:
    """Mark the text of every ``...ID`` element so normalize_dict keeps it a str."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key.endswith("ID") and isinstance(value, str):
                out[key] = _MARK + value
            elif key.endswith("ID") and isinstance(value, list):
                out[key] = [_MARK + v if isinstance(v, str) else _protect_ids(v) for v in value]
            else:
                out[key] = _protect_ids(value)
        return out
    if isinstance(node, list):
        return [_protect_ids(item) for item in node]
    return node


def _restore_ids(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _restore_ids(value)
        return node
    if isinstance(node, list):
        return [_restore_ids(item) for item in node]
    if isinstance(node, str) and node.startswith(_MARK):
        return node[len(_MARK) :]
    return node


def normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Normalise like openleadr's ``normalize_dict``, with identifiers kept as text."""
    result: dict[str, Any] = _restore_ids(utils.normalize_dict(_protect_ids(raw)))
    return result


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("#text")
    return value if isinstance(value, str) else None


def _listed(raw_event: Any, known: Collection[EventKey]) -> ListedEvent:
    ei = raw_event.get("eiEvent") if isinstance(raw_event, dict) else None
    descriptor = ei.get("eventDescriptor") if isinstance(ei, dict) else None
    descriptor = descriptor if isinstance(descriptor, dict) else {}
    raw_id = _text(descriptor.get("eventID"))
    required = _text(raw_event.get("oadrResponseRequired")) if isinstance(raw_event, dict) else None
    item = ListedEvent(
        event_id=normalise_event_id(raw_id),
        modification_number=modification_number(_text(descriptor.get("modificationNumber"))),
        raw_event_id=raw_id,
        response_required=required.strip() if required else None,
    )
    if item.event_id is None:
        item.error = "it has no event ID"
    elif item.key not in known:
        try:
            [event] = normalise({"oadrEvent": raw_event})["events"]
        except Exception as err:  # noqa: BLE001 - any failure refuses this event only
            item.error = f"{type(err).__name__}: {err}"
        else:
            item.event = event
    return item


def decode(
    content: bytes, fingerprint: str | None = None, known: Collection[EventKey] = ()
) -> tuple[str, dict[str, Any]]:
    """Validate, check the signature and parse a guarded body. Blocking: CPU-bound.

    ``known`` are the (id, modification number) pairs whose events need no parsing. Raises a
    :class:`VtnError` subclass for a message that cannot be used at all.
    """
    tree = validate(content)
    if fingerprint:
        with _SIGNATURE_LOCK:
            check_signature(tree, fingerprint)
    try:
        parsed = xml_compat.parse_xml(content, process_namespaces=True, namespaces=NAMESPACES)
        message_type, body = parsed["oadrPayload"]["oadrSignedObject"].popitem()
    except Exception as err:
        raise VtnUnknownError(f"The VTN's message could not be parsed: {err!r}") from err
    if not isinstance(body, dict):
        body = {}
    raw_events = _as_list(body.pop("oadrEvent", None))
    if len(raw_events) > MAX_EVENTS_PER_MESSAGE:
        raise VtnMessageRefused(
            f"it lists {len(raw_events):,} events, more than the limit of "
            f"{MAX_EVENTS_PER_MESSAGE:,}",
            "events",
        )
    requests = body.get("oadrReportRequest")
    if len(_as_list(requests)) > MAX_REPORT_REQUESTS:
        raise VtnMessageRefused(
            f"it contains {len(_as_list(requests)):,} report requests, more than the limit "
            f"of {MAX_REPORT_REQUESTS:,}",
            "report_requests",
        )
    try:
        payload = normalise(body)
    except Exception as err:
        raise VtnUnknownError(f"The VTN's {message_type} could not be read: {err!r}") from err
    if message_type == "oadrDistributeEvent":
        listed = [_listed(raw, known) for raw in raw_events]
        payload["events"] = [item.event for item in listed if item.event is not None]
        payload[LISTED_KEY] = listed
    return str(message_type), payload
