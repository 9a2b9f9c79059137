"""Make openleadr 0.5.36 parse messages under xmltodict 0.13 and 1.x alike.

openleadr pins ``xmltodict==0.13.0`` but Home Assistant 2026.x core integrations install 1.0.4.
With ``process_namespaces=True``, xmltodict 1.x also reports each element's namespace declarations
as ``@xmlns`` attributes, and openleadr's ``normalize_dict`` then meets dicts where it expects plain
values (e.g. the poll frequency), so ``client.run()`` fails with a ``TypeError``.

The fix wraps the ``xmltodict`` module that ``openleadr.messaging`` sees (and only that one) so the
parsed tree is handed over without namespace declarations — exactly what 0.13 produced. No
installed file is edited and other users of xmltodict in the process are unaffected.
"""

from __future__ import annotations

import types
from typing import Any

import openleadr.messaging
import xmltodict


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


# A module-like object: the real module's attributes, with ``parse`` replaced.
_PATCHED = types.SimpleNamespace(**{**vars(xmltodict), "parse": parse_xml})


def install() -> None:
    """Point openleadr's message parser at the namespace-stripping ``xmltodict.parse``.

    Idempotent; cheap enough to call on every set-up.
    """
    openleadr.messaging.xmltodict = _PATCHED
