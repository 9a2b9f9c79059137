"""openleadr 0.5.36 parsing under xmltodict 0.13 and 1.x alike; the product's one library patch.

openleadr pins ``xmltodict==0.13.0`` but Home Assistant 2026.x core integrations install 1.0.4.
``openleadr.messaging.parse_message`` (openleadr/messaging.py:59) calls ``xmltodict.parse(data,
process_namespaces=True, ...)``; xmltodict 1.x then also reports each element's namespace
declarations as ``@xmlns`` attributes, ``utils.normalize_dict`` (messaging.py:61) meets dicts
where it expects plain values, and ``client.run()`` fails with a ``TypeError`` (client.py:166).

:func:`parse_xml` and :func:`parse_message` drop the namespace declarations, which gives the
values 0.13 gave, under any version and without touching the library; the VEN's receive path
(``decoding.py``) uses them.

Every change the product makes to a library object at runtime, listed here on purpose
(``tests/openadr/test_xml_compat.py`` fails when a library changes under one of them):

1. ``openleadr.messaging.xmltodict`` is replaced by :data:`_PATCHED`, the real module with
   ``parse`` wrapped by :func:`parse_xml`, so openleadr's own ``parse_message`` works too (the
   VEN still calls it to read back the reports it sends, ``ven.py``; with :func:`parse_message`
   there instead, this patch could go). Installed by :func:`install`, which
   ``factory.create_client`` calls before building a client; idempotent, and other users of
   xmltodict in the process are unaffected.
2. The ``openleadr`` logger's level: openleadr forces INFO at import (client.py:38);
   ``factory.create_client`` gives it back to the logging configuration (not a code patch).

Everything else that adapts a library is a subclass override (``client.py``,
``event_exchange.py``, ``bacnet/stack.py``), except ``modbus/meter.py``, which wraps one
method of its own pymodbus client's protocol instance.
"""

from __future__ import annotations

import types
from typing import Any

import openleadr.messaging
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


# A module-like object: the real module's attributes, with ``parse`` replaced.
_PATCHED = types.SimpleNamespace(**{**vars(xmltodict), "parse": parse_xml})


def install() -> None:
    """Point openleadr's message parser at :func:`parse_xml` (patch 1 above).

    Idempotent and cheap enough to call on every set-up. A simulated VTN in the same process
    installs its own equivalent fix on the same name; both wrap the real ``xmltodict.parse``
    and give the same output, so the last one installed makes no difference.
    """
    if openleadr.messaging.xmltodict is not _PATCHED:
        openleadr.messaging.xmltodict = _PATCHED
