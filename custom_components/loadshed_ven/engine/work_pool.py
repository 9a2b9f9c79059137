"""The bounded pool of workers that runs one shed pass's writes, releases and reads.

Routed points go first and have a cap of their own; BACnet/IP controllers are interleaved so
that workers never pile up on one controller with many points while it answers only a few
requests at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import zip_longest
from typing import Final

from .overrides import FailureKind, Outcome
from .points import PointValue

type WorkItem = tuple[str, PointValue | None]
type Operation = Callable[[str, PointValue | None], Awaitable[Outcome]]

# Operations of one pass in flight at once. Above the BACnet writer's overall limit (64), so
# that limit stays the binding one, yet far fewer tasks than points: starting one task per
# point made the callback that starts a 500-point pass long.
POOL_SIZE: Final = 128
# Workers that may wait on routed points at once. Routed trunks take only a few requests each;
# the cap keeps the other half of the pool (as many as the writer's overall limit) for
# BACnet/IP controllers instead of queueing it behind a trunk.
ROUTED_WORKERS: Final = POOL_SIZE // 2


def is_routed(address: str) -> bool:
    """True for a routed ``network:MAC`` address, False for BACnet/IP.

    Addresses are normalised by :func:`.points.normalise_address`: only IPv4 ones contain dots.
    """
    return "." not in address


async def run_pool(
    work: list[WorkItem],
    operation: Operation,
    *,
    address_of: Callable[[str], str],
    deadline: float | None,
    pass_deadline: float | None,
) -> dict[str, Outcome]:
    """Run the operations on a bounded pool of workers; those unfinished at ``deadline`` fail.

    ``deadline`` is in loop time (None: none); ``pass_deadline`` is its length, for the message.
    """
    outcomes: dict[str, Outcome] = {}
    routed, direct = _work_order(work, address_of)
    routed_busy = 0

    def take() -> tuple[WorkItem, bool] | None:
        if routed and routed_busy < ROUTED_WORKERS:
            return routed.popleft(), True
        if direct:
            return direct.popleft(), False
        return None  # what is left is routed, and the routed workers will drain it

    async def worker() -> None:
        nonlocal routed_busy
        while (taken := take()) is not None:
            (key, target), on_route = taken
            routed_busy += on_route
            try:
                outcomes[key] = await operation(key, target)
            except Exception as err:  # noqa: BLE001 - one point's bug must not stop the others
                outcomes[key] = Outcome(ok=False, failure=FailureKind.ERROR, detail=repr(err))
            routed_busy -= on_route

    try:
        async with asyncio.timeout_at(deadline), asyncio.TaskGroup() as workers:
            for _ in range(min(POOL_SIZE, len(work))):
                workers.create_task(worker())
    except TimeoutError:
        late = Outcome(
            ok=False,
            failure=FailureKind.OFFLINE,
            detail=f"no verified answer within the {pass_deadline:g} s pass deadline",
        )
        for key, _ in work:
            outcomes.setdefault(key, late)
    return outcomes


def _work_order(
    work: list[WorkItem], address_of: Callable[[str], str]
) -> tuple[deque[WorkItem], deque[WorkItem]]:
    """Split ``work`` into routed and BACnet/IP items, each round-robin by controller.

    Routed points go first: a trunk is the slowest path, and the writer serves routed
    requests first too.
    """
    by_device: dict[str, list[WorkItem]] = {}
    for key, target in work:
        by_device.setdefault(address_of(key), []).append((key, target))
    routed = [items for address, items in by_device.items() if is_routed(address)]
    direct = [items for address, items in by_device.items() if not is_routed(address)]
    return _round_robin(routed), _round_robin(direct)


def _round_robin(queues: list[list[WorkItem]]) -> deque[WorkItem]:
    """The first item of every queue, then the second of every queue, and so on."""
    return deque(item for layer in zip_longest(*queues) for item in layer if item is not None)
