#!/usr/bin/env python3
"""loadtest/sched_waits.py: how long named threads waited for a core, from a scheduler trace.

Reads `perf script -F comm,tid,pid,cpu,time,event,trace` output of a `perf sched record -a`
on standard input. For each thread named on the command line (NAME=TID) it prints how often
it was switched out while still runnable (preempted) or asleep, and each wait from runnable
(woken, or preempted) to running again: the mean, how many passed 200 us and 1 ms, the
longest, and the time spent in waits over 1 ms. For all its waits, and again for the long
ones, it prints how much of the wait the other cores spent idle and what held the core the
thread waited for: a wait beside an idle core is the scheduler's placement, not a lack of
CPU. For its longest wait, if over 1 ms, it prints what each core ran meanwhile: a
real-time thread left waiting while a core ran idle or ordinary threads for milliseconds
was held back by the kernel (its real-time throttle, or code that cannot be preempted),
not by the other processes' claim on the cores.

Usage: perf script ... | sched_waits.py SECONDS NAME=TID [NAME=TID ...]
"""

import bisect
import re
import sys
from collections import Counter, defaultdict

LINE = re.compile(r"\[(\d+)\]\s+(\d+\.\d+):\s+sched:(\w+):\s*(.*)$")
FIELD = re.compile(r"(\w+)=(\S+)")
LONG_S = 0.001
MID_S = 0.0002


class Thread:
    """One watched thread's waits."""

    def __init__(self, name):
        self.name = name
        self.preempted = 0
        self.slept = 0
        self.runnable_since = None
        self.waits = []  # (seconds, start, cpu it ran on, what ran there before it)


def fields(text):
    return dict(FIELD.findall(text))


def idle_overlap(intervals, ends, start, end):
    """Seconds of [start, end) inside the sorted, disjoint `intervals` (`ends`: their ends)."""
    total = 0.0
    i = bisect.bisect_right(ends, start)
    while i < len(intervals) and intervals[i][0] < end:
        a, b = intervals[i]
        total += min(b, end) - max(a, start)
        i += 1
    return total


def beside(waits, idle, ends, cpus):
    """How the other cores spent `waits`: the idle share, and what held the waited-for core."""
    total = sum(w for w, _, _, _ in waits)
    spare = sum(
        idle_overlap(idle[c], ends[c], start, start + w)
        for w, start, cpu, _ in waits
        for c in cpus
        if c != cpu
    )
    behind = Counter(holder for _, _, _, holder in waits)
    return (
        f"the other cores were idle {spare / total * 100 if total else 0:.0f} % of the time; "
        "the core was handed back by " + ", ".join(f"{n} {c}x" for n, c in behind.most_common(4))
    )


def occupancy(runs, start, end):
    """Seconds each thread name ran in [start, end), from one core's sorted (from, to, name)."""
    held = Counter()
    i = bisect.bisect_right([b for _, b, _ in runs], start)
    while i < len(runs) and runs[i][0] < end:
        a, b, name = runs[i]
        held[name] += min(b, end) - max(a, start)
        i += 1
    return held


def during(wait, runs, cpus):
    """What each core ran during `wait`, the three longest-running names per core."""
    seconds, start, _, _ = wait
    parts = []
    for c in sorted(cpus):
        held = occupancy(runs[c], start, start + seconds)
        top = ", ".join(f"{name} {t * 1e3:.1f} ms" for name, t in held.most_common(3))
        parts.append(f"CPU {c} ran {top or 'nothing traced'}")
    return "; ".join(parts)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    seconds = float(argv[1])
    watched = {}
    for spec in argv[2:]:
        name, _, tid = spec.partition("=")
        if not tid.isdigit():
            sys.stderr.write(f"sched_waits.py: {spec!r} is not NAME=TID\n")
            return 2
        watched[tid] = Thread(name)
    idle = defaultdict(list)  # cpu -> [(from, to)]
    idle_since = {}
    cpus = set()
    runs = defaultdict(list)  # cpu -> [(from, to, name of the thread that ran)]
    ran_since = {}  # cpu -> when its current thread began (the trace's start for the first)
    running = {}  # cpu -> the name of its current thread
    first = last = None
    for line in sys.stdin:
        m = LINE.search(line)
        if not m:
            continue
        cpu, t, event, rest = int(m.group(1)), float(m.group(2)), m.group(3), m.group(4)
        cpus.add(cpu)
        first = t if first is None else first
        last = t
        f = fields(rest)
        if event == "sched_waking":
            th = watched.get(f.get("pid"))
            if th and th.runnable_since is None:
                th.runnable_since = t
        elif event == "sched_switch":
            prev, nxt = f.get("prev_pid"), f.get("next_pid")
            runs[cpu].append((ran_since.get(cpu, first), t, f.get("prev_comm", "?")))
            ran_since[cpu] = t
            running[cpu] = f.get("next_comm", "?")
            if nxt == "0":
                idle_since[cpu] = t
            if prev == "0" and cpu in idle_since:
                idle[cpu].append((idle_since.pop(cpu), t))
            th = watched.get(prev)
            if th:
                if f.get("prev_state", "").startswith("R"):
                    th.preempted += 1
                    th.runnable_since = t
                else:
                    th.slept += 1
                    th.runnable_since = None
            th = watched.get(nxt)
            if th and th.runnable_since is not None:
                th.waits.append((t - th.runnable_since, th.runnable_since, cpu, f.get("prev_comm", "?")))
                th.runnable_since = None
    for cpu, since in ran_since.items():
        runs[cpu].append((since, last, running[cpu]))
    ends = {c: [b for _, b in idle[c]] for c in cpus}
    for th in watched.values():
        waits = [w[0] for w in th.waits]
        if not waits:
            print(f"  {th.name:<15} no waits seen (is the TID right?)")
            continue
        long_waits = [w for w in th.waits if w[0] > LONG_S]
        long_total = sum(w[0] for w in long_waits)
        print(
            f"  {th.name:<15} preempted {th.preempted}, slept {th.slept}; {len(waits)} waits for a core: "
            f"mean {sum(waits) / len(waits) * 1e6:.0f} us, over 200 us {sum(w > MID_S for w in waits)}, "
            f"over 1 ms {len(long_waits)}, longest {max(waits) * 1e3:.2f} ms; "
            f"{long_total * 1e3:.1f} ms in waits over 1 ms ({long_total / seconds * 100:.1f} % of {seconds:g} s)"
        )
        print(f"  {'':<15} in all its waits {beside(th.waits, idle, ends, cpus)}")
        if long_waits:
            print(f"  {'':<15} in the waits over 1 ms {beside(long_waits, idle, ends, cpus)}")
            longest = max(th.waits)
            print(
                f"  {'':<15} during its longest wait ({longest[0] * 1e3:.2f} ms from "
                f"{longest[1]:.6f} s) {during(longest, runs, cpus)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
