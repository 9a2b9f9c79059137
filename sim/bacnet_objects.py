"""Building blocks of the simulated BACnet controllers: points, ports, stack plumbing.

The commandable points keep a real 16-slot priority array; besides them a controller holds
the sensors and outputs a site survey finds (:func:`build_extras`), with names, units and
ranges. The helpers at the end assemble, bind and completely close bacpypes3 applications.

Object identifiers are written the way BACnet tools print them: ``"analog-value,302"``.
Tuples such as ``("analog-value", 302)`` are accepted everywhere and normalised to that
string form, which is also what every public helper returns.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

from bacpypes3.basetypes import BinaryPV, EngineeringUnits, PriorityValue
from bacpypes3.comm import bind
from bacpypes3.errors import PropertyError
from bacpypes3.local.analog import AnalogInputObject, AnalogOutputObject, AnalogValueObject
from bacpypes3.local.binary import BinaryInputObject, BinaryValueObject
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.multistate import MultiStateValueObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.netservice import NetworkServiceAccessPoint, NetworkServiceElement
from bacpypes3.primitivedata import Enumerated, ObjectIdentifier

type ObjectRef = str | tuple[str, int]
"""An object identifier: ``"analog-value,302"`` or ``("analog-value", 302)``."""

type PointValue = float | int | str
"""A present value in Python terms: float (analog), "active"/"inactive" (binary),
int (multi-state)."""

ZONE_COOLING_SETPOINT = "analog-value,302"
SHED_ENABLE = "binary-value,1"
FAN_SPEED_STAGE = "multi-state-value,1"
POINT_IDS: tuple[str, ...] = (ZONE_COOLING_SETPOINT, SHED_ENABLE, FAN_SPEED_STAGE)
# Objects a site survey finds besides the points above; the product never writes them.
ZONE_TEMPERATURE = "analog-input,1"
OUTSIDE_AIR_TEMPERATURE = "analog-input,2"
DAMPER_COMMAND = "analog-output,3"  # analog-output,1 stays unknown: tests rely on that
FAN_SPEED_COMMAND = "analog-output,2"
OCCUPANCY = "binary-input,1"
EXTRA_IDS: tuple[str, ...] = (
    ZONE_TEMPERATURE,
    OUTSIDE_AIR_TEMPERATURE,
    DAMPER_COMMAND,
    FAN_SPEED_COMMAND,
    OCCUPANCY,
)
VENDOR_NAME = "Loadshed Sim Controls"
MODEL_NAME = "SIM-VAV-100"  # the controllers' model
INFRASTRUCTURE_MODEL = "SIM-NET-1"  # routers and BBMDs

PRIORITY_SLOTS = 16
BACNET_PORT = 47808
VENDOR_ID = 999  # the BACpypes sample vendor; nothing keys on it
BIND_TIMEOUT = 5.0
CLOSE_BIND_GRACE = 1.0  # a bind in progress takes milliseconds; a retrying one sleeps 1 s


class SimBacnetError(RuntimeError):
    """A simulated controller could not start (address in use, bad configuration)."""


def normalize_object_id(ref: ObjectRef) -> str:
    """Return the canonical ``"type,instance"`` form of ``ref``; raise ValueError if malformed."""
    try:
        oid = ObjectIdentifier(ref)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"not a BACnet object identifier: {ref!r}") from err
    return str(oid)


class _SimPoint(Commandable):  # type: ignore[misc]
    """Commandable behaviour plus the two things a test needs to steer: denial and change hooks."""

    _write_denied: bool = False
    _on_change: Callable[[str], None] | None = None

    async def write_property(
        self,
        attr: int | str,
        value: Any,
        index: int | None = None,
        priority: int | None = None,
    ) -> None:
        """Refuse remote writes while denied, the way a locked-out controller answers."""
        if self._write_denied:
            raise PropertyError("writeAccessDenied")
        await super().write_property(attr, value, index, priority)

    def recalculating(self) -> None:
        """Recompute the present value, then tell the owner a slot changed."""
        super().recalculating()
        if self._on_change is not None:
            self._on_change(str(self.objectIdentifier))


class SimAnalogValue(_SimPoint, AnalogValueObject):  # type: ignore[misc]
    """Commandable analog value with a real 16-slot priority array."""

    _required = ("priorityArray",)


class SimBinaryValue(_SimPoint, BinaryValueObject):  # type: ignore[misc]
    """Commandable binary value with a real 16-slot priority array."""

    _required = ("priorityArray",)


class SimMultiStateValue(_SimPoint, MultiStateValueObject):  # type: ignore[misc]
    """Commandable multi-state value with a real 16-slot priority array."""

    _required = ("priorityArray",)


def device_object(instance: int, name: str, model: str = INFRASTRUCTURE_MODEL) -> Any:
    """Build the device object of a simulated controller or router."""
    return DeviceObject(
        objectIdentifier=("device", instance),
        objectName=name,
        vendorIdentifier=VENDOR_ID,
        vendorName=VENDOR_NAME,
        modelName=model,
    )


def virtual_port(network: int, mac: int, vlan_name: str, instance: int) -> Any:
    """Build a network port on the bacpypes3 virtual network ``vlan_name`` (stand-in for MS/TP)."""
    return NetworkPortObject(
        objectIdentifier=("network-port", instance),
        objectName=f"NetworkPort-{instance}",
        networkType="virtual",
        protocolLevel="bacnet-application",
        macAddress=bytes([mac]),
        networkNumber=network,
        networkNumberQuality="configured",
        networkInterfaceName=vlan_name,
        statusFlags=[0, 0, 0, 0],
        reliability="no-fault-detected",
        outOfService=False,
        changesPending=False,
    )


def ip_port(ip: str, network: int | None = None) -> Any:
    """Build a BACnet/IP network port on ``ip:47808``, optionally numbering its network."""
    # /32: the broadcast tuple equals the unicast one, so bacpypes3 opens no broadcast
    # socket and refuses LocalBroadcast sends instead of putting them on a wire.
    extra: dict[str, Any] = {}
    if network is not None:
        extra = {"networkNumber": network, "networkNumberQuality": "configured"}
    return NetworkPortObject(
        f"{ip}/32:{BACNET_PORT}",
        objectIdentifier=("network-port", 1),
        objectName="NetworkPort-1",
        **extra,
    )


def build_points() -> list[Any]:
    """Create the controller's commandable points in their relinquished state."""
    status = {"statusFlags": [0, 0, 0, 0], "eventState": "normal", "outOfService": False}
    return [
        SimAnalogValue(
            objectIdentifier=ZONE_COOLING_SETPOINT,
            objectName="Zone Cooling Setpoint",
            description="Occupied cooling setpoint of the zone",
            presentValue=72.0,
            relinquishDefault=72.0,
            units=EngineeringUnits.degreesFahrenheit,
            minPresValue=55.0,  # advertised only: writes outside are not refused
            maxPresValue=90.0,
            covIncrement=0.5,
            **status,
        ),
        SimBinaryValue(
            objectIdentifier=SHED_ENABLE,
            objectName="Shed Enable",
            description="Demand response shed request",
            presentValue="inactive",
            relinquishDefault="inactive",
            **status,
        ),
        SimMultiStateValue(
            objectIdentifier=FAN_SPEED_STAGE,
            objectName="Fan Speed Stage",
            description="Supply fan speed stage",
            presentValue=1,
            relinquishDefault=1,
            numberOfStates=3,
            stateText=["Low", "Medium", "High"],
            **status,
        ),
    ]


def build_extras() -> list[Any]:
    """Create the objects besides the points: sensors (not commandable) and two outputs."""
    status = {"statusFlags": [0, 0, 0, 0], "eventState": "normal", "outOfService": False}
    sensors = [
        (ZONE_TEMPERATURE, "Zone Temperature", "Space temperature sensor", 72.5),
        (OUTSIDE_AIR_TEMPERATURE, "Outside Air Temperature", "Outside air sensor", 85.0),
    ]
    outputs = [
        (DAMPER_COMMAND, "Outside Air Damper Command", "Outside air damper position", 20.0),
        (FAN_SPEED_COMMAND, "Supply Fan Speed Command", "Supply fan VFD speed", 100.0),
    ]
    extras: list[Any] = [
        AnalogInputObject(
            objectIdentifier=oid,
            objectName=name,
            description=text,
            presentValue=value,
            units=EngineeringUnits.degreesFahrenheit,
            minPresValue=-40.0,
            maxPresValue=150.0,
            covIncrement=0.5,
            **status,
        )
        for oid, name, text, value in sensors
    ]
    extras += [
        AnalogOutputObject(
            objectIdentifier=oid,
            objectName=name,
            description=text,
            presentValue=value,
            relinquishDefault=value,
            units=EngineeringUnits.percent,
            minPresValue=0.0,
            maxPresValue=100.0,
            covIncrement=1.0,
            **status,
        )
        for oid, name, text, value in outputs
    ]
    extras.append(
        BinaryInputObject(
            objectIdentifier=OCCUPANCY,
            objectName="Zone Occupancy",
            description="Occupancy sensor",
            presentValue="active",
            polarity="normal",
            **status,
        )
    )
    return extras


def to_python(obj: Any, value: Any) -> PointValue:
    """Convert a BACnet value held by ``obj`` to a plain Python value."""
    if isinstance(obj, SimBinaryValue) or isinstance(value, Enumerated):
        # Slots hold a generic Enumerated; BinaryPV restores the state name.
        return str(BinaryPV(int(value)))
    if isinstance(obj, SimAnalogValue):
        return float(value)
    return int(value)


def slot_values(obj: Any) -> list[PointValue | None]:
    """Return the 16 priority slots of ``obj`` as Python values, None for NULL."""
    values: list[PointValue | None] = []
    for slot in obj.priorityArray:
        if slot.null is not None:
            values.append(None)
        else:
            values.append(to_python(obj, getattr(slot, slot._choice)))
    return values


def is_overridden(obj: Any) -> bool:
    """Return True if any priority slot of ``obj`` holds a value."""
    return any(slot.null is None for slot in obj.priorityArray)


def priority_value(obj: Any, value: PointValue | None) -> Any:
    """Build the PriorityValue ``obj`` would store for ``value`` (None means NULL)."""
    if value is None:
        return PriorityValue(null=())
    # The present-value type (Real, BinaryPV, Unsigned) picks the right choice.
    value_type = obj._elements["presentValue"]
    return PriorityValue(value_type(value))


def check_loopback(ip: str) -> None:
    """Raise ValueError unless ``ip`` is in 127.0.0.0/8."""
    if not ipaddress.IPv4Address(ip).is_loopback:
        raise ValueError(f"simulated controllers live on 127.0.0.0/8 only, not {ip}")


def check_free(ip: str) -> None:
    """Fail fast if another socket holds ip:47808.

    bacpypes3 binds with SO_REUSEPORT and retries forever, so a clash would otherwise
    show up only as two stacks silently splitting the replies.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind((ip, BACNET_PORT))
    except OSError as err:
        raise SimBacnetError(f"{ip}:{BACNET_PORT} is already in use") from err
    finally:
        probe.close()


def build_application(app: Any, asap: Any, objects: list[Any]) -> Any:
    """Assemble the stack the way ``Application.from_object_list`` does, with our ASAP."""
    app.asap = asap
    app.nsap = NetworkServiceAccessPoint()
    app.nse = NetworkServiceElement()
    bind(app.nse, app.nsap)
    bind(app, app.asap, app.nsap)
    for obj in objects:
        app.add_object(obj)
    return app


async def wait_until_bound(app: Any, label: str = "application") -> None:
    """Wait until every socket of ``app`` is bound; SimBacnetError after BIND_TIMEOUT.

    bacpypes3 binds in a background task and retries forever on failure, so a port held
    by another stack shows up only as this wait never ending.
    """
    for link in app.link_layers.values():
        server = getattr(link, "server", None)
        if server is None:  # virtual link layers have nothing to bind
            continue
        try:
            await asyncio.wait_for(server._local_transport_ready.wait(), BIND_TIMEOUT)
        except TimeoutError as err:
            raise SimBacnetError(f"{label}: socket did not bind") from err


async def close_application(app: Any) -> None:
    """Close sockets, bind tasks, virtual nodes and transaction timers of ``app``."""
    for tr in [*app.asap.serverTransactions, *app.asap.clientTransactions]:
        tr.stop_timer()
    binding: list[asyncio.Task[Any]] = []
    for link in app.link_layers.values():
        server = getattr(link, "server", None)
        if server is not None:
            binding.extend(t for t in server._transport_tasks if not t.done())
        node = getattr(link, "node", None)
        if node is not None and node.lan is not None:
            node.lan.remove_node(node)
    if binding:
        # Cancelling a bind mid-flight makes bacpypes3's done-callback log a traceback, and
        # close() alone would leave a retrying bind that grabs the port later: let a bind in
        # progress finish so close() can shut its socket, cancel only one that keeps retrying.
        _, stuck = await asyncio.wait(binding, timeout=CLOSE_BIND_GRACE)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
    app.close()
    await asyncio.sleep(0)  # let the transports finish closing before a rebind
