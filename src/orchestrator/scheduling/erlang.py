"""Erlang C: how many counsellors a stream of people needs for a target wait.

The M/M/c queue: people arrive at random (Poisson, ``arrival_rate`` an hour), each takes an
exponential time with mean ``service_minutes``, ``servers`` counsellors serve them first come
first served. With the offered load ``a = arrival_rate * service_minutes / 60`` (in Erlangs) and
``a < servers``:

- the probability that an arrival waits is Erlang's C formula, computed here from Erlang B by
  its stable recurrence ``B(0) = 1, B(k) = a·B(k-1) / (k + a·B(k-1))``,
  ``C = c·B / (c - a·(1 - B))``;
- the mean wait is ``C * service / (c - a)``;
- the probability of waiting longer than ``t`` is ``C * exp(-(c - a)·t / service)``.

Pure functions of floats; the capacity plan sizes its reserves with :func:`servers_for` and the
simulator's test checks its mean waits against :func:`mean_wait`.
"""

from __future__ import annotations

import math


def offered_load(arrival_rate: float, service_minutes: float) -> float:
    """Erlangs: how many counsellors the stream keeps busy on average."""
    return arrival_rate * service_minutes / 60.0


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival has to wait (1.0 when the queue is unstable)."""
    if load <= 0:
        return 0.0
    if servers <= load:
        return 1.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return servers * blocking / (servers - load * (1.0 - blocking))


def mean_wait(arrival_rate: float, service_minutes: float, servers: int) -> float:
    """Mean wait in minutes before service (``inf`` when ``servers`` cannot keep up)."""
    load = offered_load(arrival_rate, service_minutes)
    if load <= 0:
        return 0.0
    if servers <= load:
        return math.inf
    return erlang_c(servers, load) * service_minutes / (servers - load)


def wait_within(arrival_rate: float, service_minutes: float, servers: int, minutes: float) -> float:
    """Share of arrivals served within ``minutes`` of arriving."""
    load = offered_load(arrival_rate, service_minutes)
    if load <= 0:
        return 1.0
    if servers <= load:
        return 0.0
    late = erlang_c(servers, load) * math.exp(-(servers - load) * minutes / service_minutes)
    return 1.0 - late


def servers_for(
    arrival_rate: float, service_minutes: float, target_minutes: float, service_level: float = 0.8
) -> int:
    """The fewest counsellors that serve ``service_level`` of arrivals within ``target_minutes``
    (0 when nobody comes)."""
    if arrival_rate <= 0 or service_minutes <= 0:
        return 0
    servers = max(1, math.floor(offered_load(arrival_rate, service_minutes)) + 1)
    while wait_within(arrival_rate, service_minutes, servers, target_minutes) < service_level:
        servers += 1
    return servers
