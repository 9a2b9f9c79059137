"""The config flow's forms: one voluptuous schema per step, with its selectors and defaults."""

from __future__ import annotations

from typing import Final, Literal

import voluptuous as vol
from homeassistant.helpers import selector

from .const import (
    CONF_ACT_ON_TEST_EVENTS,
    CONF_ADDRESS,
    CONF_ADDRESSES,
    CONF_BASELINE_MINUTES,
    CONF_BBMD_ADDRESS,
    CONF_BBMD_PORT,
    CONF_BBMD_TTL,
    CONF_BULK,
    CONF_CA,
    CONF_CERT,
    CONF_CHECK_REACHABLE,
    CONF_CLIENT_ID,
    CONF_CLIENT_SECRET,
    CONF_DATA_TYPE,
    CONF_DEVICE_INSTANCE,
    CONF_ENERGY_REGISTER,
    CONF_HOST,
    CONF_INSTANCE,
    CONF_INTERFACE,
    CONF_KEY,
    CONF_MAX_KW,
    CONF_METER_ENTITY,
    CONF_METER_INTERVAL,
    CONF_METER_SOURCE,
    CONF_MODBUS_PORT,
    CONF_NAME,
    CONF_NORMAL_LEVEL,
    CONF_OBJECT_TYPE,
    CONF_PASSPHRASE,
    CONF_POINT_MODE,
    CONF_POLL_INTERVAL,
    CONF_PORT,
    CONF_PRIORITY,
    CONF_PROGRAM,
    CONF_REGISTER,
    CONF_REGISTER_TYPE,
    CONF_ROUTERS,
    CONF_SCALE,
    CONF_SCOPE,
    CONF_SHED_LEVEL,
    CONF_TOKEN_URL,
    CONF_UNIT_ID,
    CONF_VALUE,
    CONF_VEN_ID,
    CONF_VEN_NAME,
    CONF_VTN_FINGERPRINT,
    CONF_VTN_OUTAGE_MINUTES,
    CONF_VTN_URL,
    CONF_WORD_ORDER,
    DEFAULT_BACNET_PORT,
    DEFAULT_BASELINE_MINUTES,
    DEFAULT_BBMD_TTL,
    DEFAULT_DEVICE_INSTANCE,
    DEFAULT_METER_INTERVAL,
    DEFAULT_MODBUS_PORT,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_PRIORITY,
    DEFAULT_REGISTER,
    DEFAULT_SEED_INSTANCE,
    DEFAULT_SEED_OBJECT_TYPE,
    DEFAULT_SEED_VALUE,
    DEFAULT_VTN_OUTAGE_MINUTES,
    METER_SOURCE_ENTITY,
    METER_SOURCE_MODBUS,
    POINT_MODE_BULK,
    POINT_MODE_SEED,
)
from .modbus.meter import DEFAULT_MAX_KW, DataType, RegisterType, WordOrder

_TEXT = selector.TextSelector()
_MULTILINE = selector.TextSelector(selector.TextSelectorConfig(multiline=True))
_PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
_URL = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.URL))


def _number(
    minimum: float, maximum: float, step: float | Literal["any"] = 1
) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=minimum, max=maximum, step=step, mode=selector.NumberSelectorMode.BOX
        )
    )


def _choice(options: list[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, translation_key=key, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


# The plausible maximum of the meter, in kW (both meter sources).
_MAX_KW = _number(1, 10_000_000, "any")

OBJECT_TYPES = [
    "analog-value",
    "analog-output",
    "binary-value",
    "binary-output",
    "multi-state-value",
    "multi-state-output",
]

USER: Final = vol.Schema(
    {
        vol.Required(CONF_VTN_URL): _URL,
        vol.Required(CONF_VEN_NAME): _TEXT,
        vol.Optional(CONF_VEN_ID): _TEXT,
        vol.Optional(CONF_CERT): _MULTILINE,
        vol.Optional(CONF_KEY): _MULTILINE,
        vol.Optional(CONF_PASSPHRASE): _PASSWORD,
        vol.Optional(CONF_CA): _MULTILINE,
        vol.Optional(CONF_VTN_FINGERPRINT): _TEXT,
    }
)


USER_3: Final = vol.Schema(
    {
        vol.Required(CONF_VTN_URL): _URL,
        vol.Required(CONF_VEN_NAME): _TEXT,
        vol.Required(CONF_CLIENT_ID): _TEXT,
        vol.Required(CONF_CLIENT_SECRET): _PASSWORD,
        vol.Optional(CONF_TOKEN_URL): _URL,
        vol.Optional(CONF_SCOPE): _TEXT,
        vol.Optional(CONF_PROGRAM): _TEXT,
        vol.Required(CONF_POLL_INTERVAL, default=DEFAULT_POLL_INTERVAL): _number(1, 3600),
    }
)


def bacnet(default_interface: str, *, with_points: bool = True) -> vol.Schema:
    """The BACnet step, its interface pre-filled with HA's primary address (if known).

    Without ``with_points`` (reconfiguring: the points live in the controller subentries) it
    asks for the interface only.
    """
    fields: dict[vol.Marker, object] = {
        vol.Required(CONF_INTERFACE, default=default_interface): _TEXT,
        vol.Required(CONF_PORT, default=DEFAULT_BACNET_PORT): _number(0, 65535),
        vol.Required(CONF_DEVICE_INSTANCE, default=DEFAULT_DEVICE_INSTANCE): _number(0, 4194302),
        vol.Optional(CONF_ROUTERS): _MULTILINE,
        # A BBMD only when the controllers are on another subnet; port and TTL apply with it.
        vol.Optional(CONF_BBMD_ADDRESS): _TEXT,
        vol.Optional(CONF_BBMD_PORT, default=DEFAULT_BACNET_PORT): _number(1, 65535),
        vol.Optional(CONF_BBMD_TTL, default=DEFAULT_BBMD_TTL): _number(30, 65535),
    }
    if with_points:
        fields[vol.Required(CONF_POINT_MODE, default=POINT_MODE_SEED)] = _choice(
            [POINT_MODE_SEED, POINT_MODE_BULK], CONF_POINT_MODE
        )
        fields[vol.Required(CONF_CHECK_REACHABLE, default=False)] = selector.BooleanSelector()
    return vol.Schema(fields)


POINTS_SEED: Final = vol.Schema(
    {
        vol.Required(CONF_ADDRESSES): _MULTILINE,
        vol.Required(CONF_OBJECT_TYPE, default=DEFAULT_SEED_OBJECT_TYPE): _choice(
            OBJECT_TYPES, CONF_OBJECT_TYPE
        ),
        vol.Required(CONF_INSTANCE, default=DEFAULT_SEED_INSTANCE): _number(0, 4194302),
        vol.Required(CONF_PRIORITY, default=DEFAULT_PRIORITY): _number(8, 16),
        vol.Required(CONF_VALUE, default=str(DEFAULT_SEED_VALUE)): _TEXT,
    }
)

POINTS_BULK: Final = vol.Schema({vol.Required(CONF_BULK): _MULTILINE})

METER: Final = vol.Schema(
    {
        vol.Required(CONF_METER_SOURCE, default=METER_SOURCE_MODBUS): _choice(
            [METER_SOURCE_MODBUS, METER_SOURCE_ENTITY], CONF_METER_SOURCE
        )
    }
)

METER_MODBUS: Final = vol.Schema(
    {
        vol.Required(CONF_HOST): _TEXT,
        vol.Required(CONF_MODBUS_PORT, default=DEFAULT_MODBUS_PORT): _number(1, 65535),
        vol.Required(CONF_UNIT_ID, default=1): _number(0, 255),
        vol.Required(CONF_REGISTER, default=DEFAULT_REGISTER): _number(0, 65535),
        vol.Required(CONF_REGISTER_TYPE, default=RegisterType.INPUT): _choice(
            [str(t) for t in RegisterType], CONF_REGISTER_TYPE
        ),
        vol.Required(CONF_DATA_TYPE, default=DataType.FLOAT32): _choice(
            [str(t) for t in DataType], CONF_DATA_TYPE
        ),
        vol.Required(CONF_WORD_ORDER, default=WordOrder.BIG): _choice(
            [str(t) for t in WordOrder], CONF_WORD_ORDER
        ),
        vol.Required(CONF_SCALE, default=1.0): _number(-1e6, 1e6, "any"),
        vol.Required(CONF_METER_INTERVAL, default=DEFAULT_METER_INTERVAL): _number(1, 3600),
        vol.Required(CONF_MAX_KW, default=DEFAULT_MAX_KW): _MAX_KW,
        # Optional: the meter's kWh register (float32, same table and word order as the power).
        vol.Optional(CONF_ENERGY_REGISTER): _number(0, 65535),
    }
)

METER_ENTITY: Final = vol.Schema(
    {
        vol.Required(CONF_METER_ENTITY): selector.EntitySelector(
            selector.EntitySelectorConfig(domain="sensor", device_class="power")
        ),
        # No interval: the sensor is followed as its state changes.
        vol.Required(CONF_MAX_KW, default=DEFAULT_MAX_KW): _MAX_KW,
    }
)

_POLICY_FIELDS: Final = {
    vol.Required(CONF_SHED_LEVEL, default=1): _number(1, 3),
    vol.Required(CONF_NORMAL_LEVEL, default=0): _number(0, 2),
    vol.Required(CONF_ACT_ON_TEST_EVENTS, default=False): selector.BooleanSelector(),
    vol.Required(CONF_BASELINE_MINUTES, default=DEFAULT_BASELINE_MINUTES): _number(1, 240),
    vol.Required(CONF_VTN_OUTAGE_MINUTES, default=DEFAULT_VTN_OUTAGE_MINUTES): _number(1, 1440),
}
POLICY: Final = vol.Schema(_POLICY_FIELDS)


def options(*, modbus_meter: bool) -> vol.Schema:
    """The options flow: the policy, and the meter's poll interval when it is a Modbus meter."""
    if not modbus_meter:
        return POLICY
    interval = vol.Required(CONF_METER_INTERVAL, default=DEFAULT_METER_INTERVAL)
    return vol.Schema({**_POLICY_FIELDS, interval: _number(1, 3600)})


REAUTH: Final = vol.Schema(
    {
        vol.Required(CONF_CERT): _MULTILINE,
        vol.Required(CONF_KEY): _MULTILINE,
        vol.Optional(CONF_PASSPHRASE): _PASSWORD,
    }
)

REAUTH_3: Final = vol.Schema(
    {
        vol.Required(CONF_CLIENT_ID): _TEXT,
        vol.Required(CONF_CLIENT_SECRET): _PASSWORD,
    }
)

CONTROLLER: Final = vol.Schema(
    {
        vol.Required(CONF_ADDRESS): _TEXT,
        vol.Optional(CONF_NAME): _TEXT,
        vol.Required(CONF_BULK): _MULTILINE,
    }
)
