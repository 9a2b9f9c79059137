"""Make the simulator's openleadr parse messages under xmltodict 0.13 and 1.x alike.

The simulated VTN is a different program from the VEN under test, so it carries its own fix
rather than the product's. openleadr 0.5.36 pins ``xmltodict==0.13.0``; with 1.x,
``xmltodict.parse(..., process_namespaces=True)`` (openleadr/messaging.py:59) also reports
namespace declarations as ``@xmlns`` attributes and openleadr's ``normalize_dict`` fails on them.
:func:`install` gives ``openleadr.messaging`` an ``xmltodict`` whose ``parse`` drops them, for
the VTN's request handler and for any plain openleadr VEN run against it.

The VEN under test patches nothing: it parses with its own functions (the product's
``openadr/xml_compat.py``), so in a test process this is the only change to openleadr's parser,
and it affects only openleadr's own code paths (the VTN's handler, a plain openleadr VEN).
"""

from __future__ import annotations

import types
from typing import Any

import openleadr.messaging
import xmltodict


def _strip_xmlns(node: Any) -> Any:
    """``node`` without ``@xmlns`` keys; text-only elements as text, empty ones as None."""
    if isinstance(node, dict):
        kept = {
            key: _strip_xmlns(value)
            for key, value in node.items()
            if key != "@xmlns" and not key.startswith("@xmlns:")
        }
        if kept.keys() == {"#text"}:
            return kept["#text"]
        return kept or None
    if isinstance(node, list):
        return [_strip_xmlns(item) for item in node]
    return node


def parse(*args: Any, **kwargs: Any) -> Any:
    """``xmltodict.parse`` without namespace declarations, as openleadr expects."""
    return _strip_xmlns(xmltodict.parse(*args, **kwargs))


_FIXED = types.SimpleNamespace(**{**vars(xmltodict), "parse": parse})


def install() -> None:
    """Point openleadr's message parser at :func:`parse` (idempotent)."""
    if openleadr.messaging.xmltodict is not _FIXED:
        openleadr.messaging.xmltodict = _FIXED
