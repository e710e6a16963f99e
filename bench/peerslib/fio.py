"""fio command lines for the nbd ioengine, and what we read back from fio's JSON output."""

import json

READS = {"read", "randread"}
WRITES = {"write", "randwrite"}

# fio's default percentile list; other percentiles need --percentile_list (see nbd_argv).
DEFAULT_PERCENTILES = (1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0,
                       99.0, 99.5, 99.9, 99.95, 99.99)


class FioError(Exception):
    pass


def nbd_argv(uri, *, name, rw, bs, iodepth, size, runtime, ramp_time=0, percentiles=None,
             extra=()):
    """fio --ioengine=nbd against one export (PEERS.md); size in bytes, times in seconds."""
    argv = ["fio", f"--name={name}", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}", f"--bs={bs}",
            f"--iodepth={iodepth}", f"--size={size}", f"--runtime={runtime}", "--time_based",
            "--numjobs=1", "--output-format=json"]
    if ramp_time:
        argv.append(f"--ramp_time={ramp_time}")
    if percentiles and any(p not in DEFAULT_PERCENTILES for p in percentiles):
        argv.append("--percentile_list=" + ":".join(f"{p:g}" for p in sorted(set(percentiles))))
    return argv + list(extra)


def device_argv(path, *, name, rw, bs, iodepth, size, runtime, ramp_time=0):
    """fio --ioengine=libaio --direct=1 on a block device (the fuse rows' loop devices)."""
    argv = ["fio", f"--name={name}", f"--filename={path}", "--ioengine=libaio", "--direct=1", f"--rw={rw}",
            f"--bs={bs}", f"--iodepth={iodepth}", f"--size={size}", f"--runtime={runtime}", "--time_based",
            "--numjobs=1", "--output-format=json"]
    if ramp_time:
        argv.append(f"--ramp_time={ramp_time}")
    return argv


def parse_output(stdout):
    """fio's JSON document; the nbd engine prints 'fio: connected to NBD server' before it."""
    start = stdout.find("{")
    if start < 0:
        raise FioError("fio printed no JSON document")
    try:
        doc = json.loads(stdout[start:])
    except json.JSONDecodeError as exc:
        raise FioError(f"cannot parse fio JSON: {exc}") from exc
    jobs = doc.get("jobs") or []
    if len(jobs) != 1:
        raise FioError(f"expected one fio job, got {len(jobs)}")
    if jobs[0].get("error"):
        raise FioError(f"fio job reported error {jobs[0]['error']}")
    return doc


def direction(rw):
    if rw in READS:
        return "read"
    if rw in WRITES:
        return "write"
    raise ValueError(f"mixed or unknown rw={rw!r}: pick the direction explicitly")


def iops(job, dirn):
    return float(job[dirn]["iops"])


def mb_per_s(job, dirn):
    """Decimal megabytes per second (10^6 bytes), from fio's bw_bytes."""
    return float(job[dirn]["bw_bytes"]) / 1e6


def latency_percentiles_us(job, dirn, percentiles=(50.0, 99.0), kind="clat_ns"):
    """Completion-latency percentiles in microseconds: {50.0: 412.2, 99.0: 1550.3}.

    kind may be 'clat_ns' (submission to completion, fio's usual figure) or 'lat_ns' (total).
    fio only reports the percentiles in its list; ask for others with nbd_argv(percentiles=...).
    """
    table = job[dirn].get(kind, {}).get("percentile")
    if not table:
        raise FioError(f"fio reported no {kind} percentiles for {dirn}")
    by_value = {float(k): v for k, v in table.items()}
    out = {}
    for p in percentiles:
        if float(p) not in by_value:
            raise FioError(f"p{p:g} is not in fio's percentile list; pass percentiles= to nbd_argv")
        out[float(p)] = by_value[float(p)] / 1000.0
    return out
