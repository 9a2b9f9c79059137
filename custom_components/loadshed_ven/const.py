"""Constants for loadshed_ven: the domain and the keys of a config entry's data."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "loadshed_ven"
LOGGER: Final = logging.getLogger(__package__)

# VTN step
CONF_VTN_URL: Final = "vtn_url"
CONF_VEN_NAME: Final = "ven_name"
CONF_VEN_ID: Final = "ven_id"
CONF_CERT: Final = "cert"  # PEM text of the VEN's client certificate
CONF_KEY: Final = "key"  # PEM text of its private key
CONF_PASSPHRASE: Final = "passphrase"  # noqa: S105 - a config key, not a secret
CONF_CA: Final = "ca"  # PEM text of the CA that signed the VTN's certificate
CONF_VTN_FINGERPRINT: Final = "vtn_fingerprint"
# OpenADR 3 (the VTN's base URL is CONF_VTN_URL, the VEN's name CONF_VEN_NAME)
CONF_OPENADR_VERSION: Final = "openadr_version"
CONF_TOKEN_URL: Final = "token_url"  # noqa: S105 - a config key, not a secret
CONF_CLIENT_ID: Final = "client_id"
CONF_CLIENT_SECRET: Final = "client_secret"  # noqa: S105 - a config key, not a secret
CONF_SCOPE: Final = "scope"
CONF_PROGRAM: Final = "program"  # a program's name or id; empty: every program offered
CONF_POLL_INTERVAL: Final = "poll_interval"  # seconds between polls of a 3.x VTN
OPENADR_2: Final = "2.0b"
OPENADR_3: Final = "3"
DEFAULT_POLL_INTERVAL: Final = 30  # seconds

# BACnet step
CONF_INTERFACE: Final = "interface"  # "192.168.1.5/24"
CONF_PORT: Final = "port"
CONF_DEVICE_INSTANCE: Final = "device_instance"
CONF_ROUTERS: Final = "routers"  # "12345=192.168.1.50" lines
CONF_BBMD_ADDRESS: Final = "bbmd_address"  # optional: register as a foreign device there
CONF_BBMD_PORT: Final = "bbmd_port"
CONF_BBMD_TTL: Final = "bbmd_ttl"  # seconds
CONF_POINTS: Final = "points"  # list of point dicts (see engine.points.OverridePoint)
CONF_POINT_MODE: Final = "point_mode"
CONF_ADDRESSES: Final = "addresses"
CONF_OBJECT_TYPE: Final = "object_type"
CONF_INSTANCE: Final = "instance"
CONF_PRIORITY: Final = "priority"
CONF_VALUE: Final = "value"
CONF_BULK: Final = "bulk"
CONF_CHECK_REACHABLE: Final = "check_reachable"

# Meter step
CONF_METER_SOURCE: Final = "meter_source"  # "modbus" | "entity"
CONF_METER_ENTITY: Final = "meter_entity"
CONF_HOST: Final = "host"
CONF_MODBUS_PORT: Final = "modbus_port"
CONF_UNIT_ID: Final = "unit_id"
CONF_REGISTER: Final = "register"
CONF_REGISTER_TYPE: Final = "register_type"
CONF_DATA_TYPE: Final = "data_type"
CONF_WORD_ORDER: Final = "word_order"
CONF_SCALE: Final = "scale"
CONF_METER_INTERVAL: Final = "meter_interval"
CONF_MAX_KW: Final = "max_kw"  # readings beyond ±max_kw are implausible and ignored
CONF_ENERGY_REGISTER: Final = "energy_register"  # optional: float32 kWh imported (eGauge)

# Shed policy step
CONF_SHED_LEVEL: Final = "shed_level"
CONF_NORMAL_LEVEL: Final = "normal_level"
CONF_ACT_ON_TEST_EVENTS: Final = "act_on_test_events"
CONF_BASELINE_MINUTES: Final = "baseline_minutes"  # kW-saved baseline window before a shed
CONF_VTN_OUTAGE_MINUTES: Final = "vtn_outage_minutes"  # VTN unreachable this long -> repair
CONF_RELEASE_WINDOW: Final = "release_window"  # minutes: an event end releases in waves
CONF_SWITCHES: Final = "switches"  # one switch per point, or one per controller

METER_SOURCE_MODBUS: Final = "modbus"
METER_SOURCE_ENTITY: Final = "entity"
POINT_MODE_SEED: Final = "seed"
POINT_MODE_BULK: Final = "bulk"

DEFAULT_BACNET_PORT: Final = 47808
DEFAULT_DEVICE_INSTANCE: Final = 3_990_001
DEFAULT_BBMD_TTL: Final = 900  # seconds
DEFAULT_MODBUS_PORT: Final = 502
DEFAULT_REGISTER: Final = 17
DEFAULT_METER_INTERVAL: Final = 10  # seconds
DEFAULT_PRIORITY: Final = 10
DEFAULT_SEED_OBJECT_TYPE: Final = "analog-value"
DEFAULT_SEED_INSTANCE: Final = 302
DEFAULT_SEED_VALUE: Final = 80
DEFAULT_BASELINE_MINUTES: Final = 15
DEFAULT_VTN_OUTAGE_MINUTES: Final = 30
DEFAULT_RELEASE_WINDOW: Final = 5  # minutes
SWITCHES_PER_POINT: Final = "point"
SWITCHES_PER_CONTROLLER: Final = "controller"

# Version 2 of an entry: the VTN, the BACnet interface and the meter in ``data``, the policy in
# ``options``, one subentry per BACnet controller holding its points (version 1 held it all).
SUBENTRY_CONTROLLER: Final = "controller"
CONF_ADDRESS: Final = "address"  # a controller subentry's device address
CONF_NAME: Final = "name"  # a controller subentry's optional name
CONF_RESOURCE_ID: Final = "resource_id"  # OpenADR resource the controller's points belong to
CONF_GROUP_ID: Final = "group_id"  # optional OpenADR group of that resource
POLICY_KEYS: Final = (
    CONF_SHED_LEVEL,
    CONF_NORMAL_LEVEL,
    CONF_ACT_ON_TEST_EVENTS,
    CONF_BASELINE_MINUTES,
    CONF_VTN_OUTAGE_MINUTES,
    CONF_METER_INTERVAL,
    CONF_RELEASE_WINDOW,
    CONF_SWITCHES,
)
