"""Rows that need the Blockshot daemon (server 'blockshot-daemon'), and the qemu-img convert peer.

- filter-swap-under-load: fio 4k random read/write at queue depth 32 runs against the daemon's export
  while a control client inserts and removes a filter over and over; the figure is the round-trip time
  of each insert and each remove (p50, p99), which includes draining the requests in flight.
- suspend-stall: fio 4k random writes at queue depth 32 while a control client suspends and resumes
  the device every 250 ms; the figure is the longest write completion fio saw (the worst stall a
  client felt), with the suspend round trip (the drain) beside it.
- mirror-vs-convert: copy the whole device to a new file: the daemon's mirror job (no concurrent
  writes, no pivot) against 'qemu-img convert -f raw -O raw' of an identical image. Both read from the
  page cache, write through it and flush at the end. The ratio is blockshot-daemon/qemu-img.
"""

import os
import statistics
import subprocess
import tempfile
import time

from . import fio
from .control import Control, ControlError
from .scenarios import IOPS, MBPS, JobError, Metric, Sample, Scenario

SWAP_P50 = Metric("swap_p50_ms", "ms", higher_is_better=False)
SWAP_P99 = Metric("swap_p99_ms", "ms", higher_is_better=False)
STALL_MAX = Metric("stall_max_ms", "ms", higher_is_better=False)
SUSPEND_P50 = Metric("suspend_p50_ms", "ms", higher_is_better=False)
DEVICE = "disk"


def _percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class _BackgroundFio:
    """fio running while the row drives the control socket; its JSON is read at the end."""

    def __init__(self, ctx, argv, purpose):
        self.argv = argv
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        ctx.cmdlog.note(argv, purpose)
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL,
                                     text=True)

    def running(self):
        return self.proc.poll() is None

    def finish(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise JobError("fio did not finish in time")
        self.out.seek(0)
        self.err.seek(0)
        stdout, stderr = self.out.read(), self.err.read()
        self.out.close()
        self.err.close()
        if self.proc.returncode != 0:
            raise JobError(f"fio exited {self.proc.returncode}: {stderr.strip()[-500:]}")
        try:
            return fio.parse_output(stdout)["jobs"][0]
        except fio.FioError as exc:
            raise JobError(f"{exc}; stderr: {stderr.strip()[-300:]}") from exc


def _wait_for_client(control, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["clients"] > 0 for e in control.call("export.list")):
            return
        time.sleep(0.02)
    raise JobError("the load generator never connected")


def _run_filter_swaps(scenario, ctx, ep):
    argv = fio.nbd_argv(ep.uri, name=scenario.name, rw="randrw", bs="4k", iodepth=32, size=ctx.size,
                        runtime=ctx.runtime + 1)
    load = _BackgroundFio(ctx, argv, f"{scenario.name} load on {ep.server}")
    times = []
    try:
        with Control(ep.control) as control:
            _wait_for_client(control)
            time.sleep(0.2)
            while load.running() and len(times) < 2000:
                _, t_in = control.timed_call("filter.insert", {"device": DEVICE, "type": "throttle"})
                _, t_out = control.timed_call("filter.remove", {"device": DEVICE, "name": "throttle"})
                times += [t_in, t_out]
                time.sleep(0.01)
    except (OSError, ControlError) as exc:
        load.finish(ctx.timeout)
        raise JobError(f"control: {exc}") from exc
    job = load.finish(ctx.timeout)
    if len(times) < 20:
        raise JobError(f"only {len(times)} filter operations ran during the load")
    load_iops = fio.iops(job, "read") + fio.iops(job, "write")
    return Sample({SWAP_P50.key: _percentile(times, 50), SWAP_P99.key: _percentile(times, 99), IOPS.key: load_iops},
                  argv, {"operations": len(times), "fio_job": job})


def _run_suspend_stall(scenario, ctx, ep):
    argv = fio.nbd_argv(ep.uri, name=scenario.name, rw="randwrite", bs="4k", iodepth=32, size=ctx.size,
                        runtime=ctx.runtime + 1)
    load = _BackgroundFio(ctx, argv, f"{scenario.name} load on {ep.server}")
    suspends = []
    try:
        with Control(ep.control) as control:
            _wait_for_client(control)
            time.sleep(0.25)
            while load.running():
                _, t = control.timed_call("device.suspend", {"name": DEVICE})
                control.call("device.resume", {"name": DEVICE})
                suspends.append(t)
                time.sleep(0.25)
    except (OSError, ControlError) as exc:
        load.finish(ctx.timeout)
        raise JobError(f"control: {exc}") from exc
    job = load.finish(ctx.timeout)
    if not suspends:
        raise JobError("no suspension ran during the load")
    stall = job["write"]["clat_ns"]["max"] / 1e6
    return Sample({STALL_MAX.key: stall, SUSPEND_P50.key: statistics.median(suspends), IOPS.key: fio.iops(job, "write")},
                  argv, {"suspensions": len(suspends), "fio_job": job})


def _run_mirror_vs_convert(scenario, ctx, ep):
    target = os.path.join(os.path.dirname(ep.image), f"copy-{ep.server}.raw")
    if os.path.exists(target):
        os.unlink(target)
    try:
        if ep.server == "qemu-img":
            argv = ["qemu-img", "convert", "-f", "raw", "-O", "raw", ep.image, target]
            start = time.perf_counter()
            proc = ctx.cmdlog.run(argv, f"{scenario.name} on {ep.server}", timeout=ctx.timeout + 600)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise JobError(f"qemu-img convert exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
            raw = {"elapsed_s": round(elapsed, 6)}
        else:
            argv = ["mirror.start", DEVICE, target]
            ctx.cmdlog.note(argv, f"{scenario.name} on {ep.server} (control socket)")
            with Control(ep.control, timeout=ctx.timeout + 600) as control:
                start = time.perf_counter()
                job = control.call("mirror.start", {"device": DEVICE, "target": target})
                done = control.call("job.wait", {"id": job["id"]})
                elapsed = time.perf_counter() - start
                control.call("job.dismiss", {"id": job["id"]})
            if done["state"] != "completed":
                raise JobError(f"the mirror ended {done['state']}: {done.get('error')}")
            raw = {"elapsed_s": round(elapsed, 6), "result": done.get("result")}
    except (OSError, ControlError) as exc:
        raise JobError(str(exc)) from exc
    finally:
        if os.path.exists(target):
            os.unlink(target)
    return Sample({MBPS.key: ctx.size / elapsed / 1e6}, argv, raw)


DAEMON_SCENARIOS = [
    Scenario("filter-swap-under-load", "filter insert/remove round trip under 4k qd32 random read/write",
             (SWAP_P50, SWAP_P99, IOPS), _run_filter_swaps, tags=("daemon",), tools=("fio",),
             needs=("daemon",)),
    Scenario("suspend-stall", "longest write stall while the device is suspended and resumed every 250 ms",
             (STALL_MAX, SUSPEND_P50, IOPS), _run_suspend_stall, tags=("daemon",), tools=("fio",),
             needs=("daemon",)),
    Scenario("mirror-vs-convert", "copy the whole device to a new file: mirror job vs qemu-img convert",
             (MBPS,), _run_mirror_vs_convert, tags=("daemon",), needs=("daemon", "convert"),
             baseline="blockshot-daemon"),
]
