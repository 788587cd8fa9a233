"""How busy the machine was around a run, and whether to call it shared.

Two measurements, both recorded for every run:
- the load average (`os.getloadavg`, 1/5/15 minutes) before and after;
- the CPU time other processes used while the run ran: the machine's busy
  time from `/proc/stat` minus the CPU time of this process and its
  finished children, over the run's wall time, in cores (Linux only;
  `None` elsewhere).

The load average alone cannot tell our own previous run from someone
else's work (runs follow each other, and the 1-minute average decays over
minutes: a job that ended a minute before the bench still shows), hence
the second measure, which decides where it was recorded: a run is
labelled a *shared machine* when other processes used more than
`OTHERS_THRESHOLD` cores during it, or when that was not measured (no
`/proc/stat`); the load average is reported beside it. The report never
calls a machine quiet.
"""

import os
import resource
import time

# Other processes' mean CPU use during a run above this many cores: the
# run shared its cores (an idle Linux machine's daemons use ~0.01-0.05).
OTHERS_THRESHOLD = 0.25

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal


def _busy_seconds():
    """The machine's busy CPU seconds since boot (all cores), or `None`."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = sum(int(fields[i]) for i in _BUSY_FIELDS if i < len(fields))
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_seconds():
    """CPU seconds of this process and of its children that ended."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def snapshot():
    """The load average and CPU counters now (pass two to `during`)."""
    return {
        "loadavg": list(os.getloadavg()),
        "wall": time.monotonic(),
        "busy_s": _busy_seconds(),
        "own_s": _own_seconds(),
    }


def during(before, after):
    """What the machine did between two snapshots of this process.

    Returns the load averages before and after and `others_cores`: the
    mean number of cores other processes kept busy (`None` without
    `/proc/stat`).
    """
    wall = after["wall"] - before["wall"]
    others = None
    if before["busy_s"] is not None and after["busy_s"] is not None and wall:
        busy = after["busy_s"] - before["busy_s"]
        own = after["own_s"] - before["own_s"]
        others = max(0.0, (busy - own) / wall)
    return {
        "loadavg_before": before["loadavg"],
        "loadavg_after": after["loadavg"],
        "others_cores": others,
        "wall_s": wall,
    }


def shared(bench_load, run_loads):
    """(shared, what was measured): whether the runs shared the machine.

    `bench_load` is the bench's own `during` (its `loadavg_before` is the
    load before the first run); `run_loads` are the runs' `during`s.

    >>> idle = {"loadavg_before": [0.1, 0.1, 0.1], "others_cores": 0.02}
    >>> shared(idle, [idle])
    (False, 'load average 0.10 before the bench; other processes used at \
most 0.02 cores during a run')
    >>> shared({**idle, "loadavg_before": [2.4, 2, 2]}, [idle])[0]
    False
    >>> shared({**idle, "loadavg_before": [2.4, 2, 2]},
    ...        [{**idle, "others_cores": None}])[0]
    True
    >>> shared(None, [])
    (True, 'machine load not recorded')
    """
    if not bench_load:
        return True, "machine load not recorded"
    load = bench_load["loadavg_before"][0]
    others = [r.get("others_cores") for r in run_loads if r]
    others = [x for x in others if x is not None]
    what = f"load average {load:.2f} before the bench"
    if others:
        what += (
            f"; other processes used at most {max(others):.2f} cores"
            " during a run"
        )
    else:
        what += "; CPU use of other processes not recorded"
    if not others:
        return True, what
    return max(others) > OTHERS_THRESHOLD, what
