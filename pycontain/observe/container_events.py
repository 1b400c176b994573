"""What happens to detached containers, as a stream of events: `pycontain events` (lesson 22).

`docker events` reports a container's life as it goes: create, start, pause, unpause, oom, die,
destroy. pycontain's sources are the ones `ps` and `stats` read: the state file each container's
supervisor rewrites at every change (`pycontain.state`), and the OOM killer's count in the
container's cgroup (`memory.events` oom_kill; v1 `memory.oom_control`). The state keeps the
times of create, start and the end, so those can be told afterwards (`--since`); a pause and an
OOM kill are seen only while watching, by reading again every `every_s`.

See also: docker-events(1), the kernel's cgroup-v2.rst ("memory.events").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import NamedTuple

from pycontain import state

#: how often a watch reads the states again: a person reads along
EVERY_S = 0.1


class Event(NamedTuple):
    """One thing that happened to a container, at `time` (seconds since the epoch)."""

    time: float
    action: str  # create, start, pause, unpause, oom, die, destroy
    id: str
    name: str
    detail: str = ""

    def line(self) -> str:
        """As docker prints it.

        >>> Event(0.5, "die", "ab" * 32, "web", "exitCode=137").line()  # doctest: +ELLIPSIS
        '1970-01-01T00:00:00.500000000Z container die abab...abab (name=web, exitCode=137)'
        """
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time))
        fraction = f"{self.time % 1:.9f}"[2:]
        extra = ", ".join(x for x in (f"name={self.name}" if self.name else "", self.detail) if x)
        return f"{stamp}.{fraction}Z container {self.action} {self.id}" + (
            f" ({extra})" if extra else "")


def _ending(record: state.Record) -> str:
    code = record.get("exit_code")
    return "" if code is None else f"exitCode={code}"


def history(record: state.Record) -> list[Event]:
    """The events a container's state still tells: create, start, (oom,) die, with their times."""
    who = (record["id"], record.get("name") or "")
    found = [Event(record["created"], "create", *who)]
    if record.get("started"):
        found.append(Event(record["started"], "start", *who))
    if record["status"] == "exited" and record.get("finished"):
        if record.get("oom_kills"):
            found.append(Event(record["finished"], "oom", *who))
        found.append(Event(record["finished"], "die", *who, _ending(record)))
    return found


def _oom_kills(record: state.Record) -> int:
    cgroup = state.cgroup_of(record)
    if cgroup is None:
        return 0
    try:
        return cgroup.read_keyed("memory.events").get("oom_kill", 0)
    except OSError:  # the cgroup went as the container ended
        return 0


class Watch:
    """Reads every container's state (and OOM count) each `poll()`, and says what changed."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[str, int, state.Record]] = {}
        self.first = True

    def _now(self) -> dict[str, state.Record]:
        found = {}
        for container_id in state.ids():
            try:
                found[container_id] = state.current(state.read(container_id))
            except (FileNotFoundError, ValueError):  # removed meanwhile, or half-made
                continue
        return found

    def poll(self) -> list[Event]:
        """What happened since the previous poll (the first poll only learns the states)."""
        first, self.first = self.first, False
        now, events = self._now(), []
        for container_id, record in now.items():
            status = record["status"]
            ooms = _oom_kills(record) if status in ("running", "paused") else 0
            old_status, old_ooms, _ = self.known.get(container_id, (None, 0, record))
            self.known[container_id] = (status, max(ooms, old_ooms), record)
            if first:
                continue
            who = (container_id, record.get("name") or "")
            if old_status is None:
                events += history(record)
                continue
            if ooms > old_ooms:
                events.append(Event(time.time(), "oom", *who))
            if status == old_status:
                continue
            if status == "running" and old_status == "created":
                events.append(Event(record.get("started") or time.time(), "start", *who))
            elif status == "paused":
                events.append(Event(time.time(), "pause", *who))
            elif status == "running" and old_status == "paused":
                events.append(Event(time.time(), "unpause", *who))
            elif status == "exited":
                if record.get("oom_kills", 0) > old_ooms:  # killed before a poll saw it
                    events.append(Event(record.get("finished") or time.time(), "oom", *who))
                events.append(Event(record.get("finished") or time.time(), "die", *who,
                                    _ending(record)))
        for gone in set(self.known) - set(now):
            _, _, record = self.known.pop(gone)
            if not first:
                events.append(Event(time.time(), "destroy", gone, record.get("name") or ""))
        return sorted(events, key=lambda e: e.time)  # stable: an oom before its die


def stream(since: float | None = None, until: float | None = None, *,
           every_s: float = EVERY_S) -> Iterator[Event]:
    """Events from `since` (what the states still tell of the past) until `until` (or for
    ever), as `docker events --since --until`; both are seconds since the epoch."""
    watch = Watch()
    watch.poll()
    if since is not None:
        past = sorted((e for _, _, r in watch.known.values() for e in history(r)),
                      key=lambda e: e.time)
        yield from (e for e in past if e.time >= since and (until is None or e.time <= until))
    while until is None or time.time() < until:
        time.sleep(every_s if until is None else max(0.0, min(every_s, until - time.time())))
        yield from (e for e in watch.poll() if until is None or e.time <= until)


def parse_time(given: str, parameter: str, now: float) -> float:
    """`--since` / `--until`: seconds since the epoch, a duration ago (`10s`, `5m`, `2h`), or
    an ISO 8601 time (`2026-01-31T10:00:00`, UTC unless it says).

    >>> parse_time("90s", "since", 1000.0), parse_time("1700000000", "until", 0.0)
    (910.0, 1700000000.0)
    >>> parse_time("1970-01-01T00:01:00", "since", 0.0)
    60.0
    """
    import datetime

    from pycontain.errors import SpecError

    text = given.strip()
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
            return now - float(text[:-1]) * units[text[-1]]
        if text.replace(".", "", 1).isdigit():
            return float(text)
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()
    except ValueError:
        raise SpecError(parameter, "seconds since the epoch, a duration ago such as 10s, 5m "
                                   "or 2h, or an ISO 8601 time such as 2026-01-31T10:00:00",
                        given) from None
