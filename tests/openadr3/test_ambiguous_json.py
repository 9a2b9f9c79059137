"""A JSON object that names a key twice means nothing for sure: the event holding it is refused
on its own, and the rest of the listing is used."""

from __future__ import annotations

import json

from custom_components.loadshed_ven.openadr3.events import refusal, to_engine_event
from custom_components.loadshed_ven.openadr3.http import AmbiguousObject, decode_json

EVENT = {
    "id": "ev-1",
    "programID": "prog-1",
    "modificationDateTime": "2026-12-04T09:00:00Z",
    "intervalPeriod": {"start": "2026-12-04T10:00:00Z", "duration": "PT1H"},
    "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
}


def test_a_repeated_key_decodes_as_an_ambiguous_object() -> None:
    decoded = decode_json(b'{"a": 1, "b": {"v": [0], "v": [3]}}')
    assert decoded["a"] == 1
    assert isinstance(decoded["b"], AmbiguousObject)
    assert decoded["b"].keys == ["v"]
    assert "'v' twice" in repr(decoded["b"])


def test_an_event_with_an_ambiguous_level_is_refused_and_the_others_kept() -> None:
    good = json.dumps(EVENT)
    ambiguous = good.replace('"values": [1]', '"values": [0], "values": [3]').replace(
        '"ev-1"', '"ev-2"'
    )
    listing = decode_json(f"[{good}, {ambiguous}]".encode())
    first, second = (to_engine_event(raw, "ven-1", None) for raw in listing)
    assert refusal(first) is None
    reason = refusal(second)
    assert reason is not None
    assert "twice" in reason


def test_an_event_object_naming_its_id_twice_has_no_id() -> None:
    listing = decode_json(b'[{"id": "ev-1", "id": "ev-9", "programID": "p"}]')
    assert isinstance(listing[0], AmbiguousObject)
    assert refusal(to_engine_event(listing[0], "ven-1", None)) is not None
