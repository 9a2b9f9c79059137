"""openleadr 0.5.36 messages parsed under xmltodict 0.13 and 1.x alike, without patching openleadr.

openleadr pins ``xmltodict==0.13.0`` but Home Assistant 2026.x core integrations install 1.0.4.
``openleadr.messaging.parse_message`` (openleadr/messaging.py:59) calls ``xmltodict.parse(data,
process_namespaces=True, ...)``; xmltodict 1.x then also reports each element's namespace
declarations as ``@xmlns`` attributes, ``utils.normalize_dict`` (messaging.py:61) meets dicts
where it expects plain values, and parsing fails or yields dicts for durations and ids.

:func:`parse_xml` and :func:`parse_message` drop the namespace declarations, which gives the
values 0.13 gave under any version. The VEN never calls openleadr's own parser: the receive path
(``decoding.py``) uses :func:`parse_xml`, the client's request path is its own
(``client.py``), and the reports it sends are read back with :func:`parse_message` (``ven.py``).
So no library object is patched at runtime; ``tests/openadr/test_xml_compat.py`` fails when the
library's behaviour that makes this necessary changes.

What else adapts a library: openleadr forces its logger to INFO at import (client.py:38), and
``factory.create_client`` gives the level back to the logging configuration (not a code patch);
the rest are subclass overrides (``client.py``, ``registration.py``, ``event_exchange.py``,
``bacnet/stack.py``), except ``modbus/meter.py``, which wraps one method of its own pymodbus
client's protocol instance.
"""

from __future__ import annotations

from typing import Any

import xmltodict
from openleadr import utils
from openleadr.messaging import NAMESPACES


def _strip_xmlns(node: Any) -> Any:
    """Return ``node`` without namespace-declaration attributes, recursively.

    An element left with only its text (``{"#text": "PT7S"}``) becomes that text, and one left
    with nothing (an empty ``<requestID xmlns="..."/>``) becomes None, as in 0.13.
    """
    if isinstance(node, dict):
        stripped = {
            key: _strip_xmlns(value)
            for key, value in node.items()
            if not (key == "@xmlns" or key.startswith("@xmlns:"))
        }
        if stripped.keys() == {"#text"}:
            return stripped["#text"]
        # openleadr drops an empty dict entirely, but keeps None (client.py:837-838 reads it).
        return stripped or None
    if isinstance(node, list):
        return [_strip_xmlns(item) for item in node]
    return node


def parse_xml(*args: Any, **kwargs: Any) -> Any:
    """``xmltodict.parse`` with 0.13's output under any installed xmltodict version."""
    return _strip_xmlns(xmltodict.parse(*args, **kwargs))


def parse_message(data: str | bytes) -> tuple[str, dict[str, Any]]:
    """Parse like openleadr's ``messaging.parse_message`` (messaging.py:45-62), with no patch.

    No schema or signature check: use it only on messages already trusted (e.g. our own).
    """
    tree = parse_xml(data, process_namespaces=True, namespaces=NAMESPACES)
    message_type, payload = tree["oadrPayload"]["oadrSignedObject"].popitem()
    return str(message_type), utils.normalize_dict(payload)
