"""bench/peers: option parsing and the top-level flow (check, set up, measure, report, clean up)."""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

from . import machine, report, runner, scenarios, servers, util
from .images import ImageSet

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(BENCH_DIR)
RESULTS_DIR = os.path.join(BENCH_DIR, "results")

QUICK = {"rounds": 2, "size": "256M", "runtime": 1, "warmup": 1}
DEFAULTS = {"rounds": 3, "size": "1G", "runtime": 4, "warmup": 2}

SCRATCH_PREFIX = "blockshot-peers-"
OWNER_FILE = "owner.pid"

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/peers",
        description="Measure Blockshot's NBD server side by side with qemu-nbd and nbdkit "
                    "(same run, alternating order, several rounds, medians and ratios).",
        epilog="Exit status: 0 every requested server measured; 3 some server skipped or failed "
               "(the run is still reported); 1 nothing measured or an error; 2 bad usage; "
               "130 interrupted.")
    p.add_argument("--servers",
                   help="comma-separated servers to measure, in this order (default: every server "
                        "that can run a chosen row: blockshot,qemu-nbd,nbdkit for the foundation rows, "
                        "blockshot-daemon,qemu-img for the daemon rows)")
    p.add_argument("--scenarios", default="foundation",
                   help="comma-separated rows and/or tags; 'all' for every row "
                        "(default: foundation)")
    p.add_argument("--rounds", type=int, help=f"rounds (default {DEFAULTS['rounds']})")
    p.add_argument("--size", help=f"image size (default {DEFAULTS['size']})")
    p.add_argument("--runtime", type=int,
                   help=f"seconds per fio job (default {DEFAULTS['runtime']})")
    p.add_argument("--warmup", type=int,
                   help=f"seconds of 4k random read against each server after it starts, not "
                        f"measured (default {DEFAULTS['warmup']})")
    p.add_argument("--ramp-time", type=int, default=0,
                   help="fio --ramp_time for each measured job, seconds (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="short development run: "
                        + ", ".join(f"--{k} {v}" for k, v in QUICK.items())
                        + " (explicit options win)")
    p.add_argument("--workdir",
                   help="parent directory for the run's scratch directory (images, sockets, logs); "
                        "must be on a disk, not tmpfs (default: $TMPDIR or /var/tmp if on disk)")
    p.add_argument("--json", dest="json_path",
                   help="where to write the JSON result (default bench/results/peers-<UTC>.json)")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory (images, logs)")
    p.add_argument("--baseline", default=servers.BASELINE,
                   help="server whose ratios to the others are reported (default %(default)s)")
    p.add_argument("--blockshot", default=os.path.join(REPO_ROOT, "blockshot"),
                   help="Blockshot launcher (default: the repo's ./blockshot)")
    p.add_argument("--build-timeout", type=int, default=1200,
                   help="seconds allowed for the first './blockshot --version' build "
                        "(default 1200)")
    p.add_argument("--start-timeout", type=int, default=60,
                   help="seconds for a server's socket to accept connections (default 60)")
    p.add_argument("--list", action="store_true", help="list servers and scenarios, then exit")
    args = p.parse_args(argv)
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else value)
    try:
        args.size = util.parse_size(args.size)
    except ValueError as exc:
        p.error(str(exc))
    if args.size % (1 << 20):
        p.error("--size must be a multiple of 1M (the sequential rows use 1M blocks)")
    if args.rounds < 1 or args.runtime < 1:
        p.error("--rounds and --runtime must be at least 1")
    try:
        args.rows = scenarios.select(args.scenarios)
    except ValueError as exc:
        p.error(str(exc))
    if args.servers is None:
        args.server_names = servers.default_names(args.rows)
    else:
        args.server_names = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.server_names if s not in servers.BY_NAME]
    if unknown or not args.server_names:
        p.error(f"unknown server(s) {unknown}; known: {', '.join(servers.BY_NAME)}")
    if len(set(args.server_names)) != len(args.server_names):
        p.error("a server is named twice in --servers")
    args.blockshot = os.path.abspath(args.blockshot)
    args.server_opts = {"blockshot": args.blockshot, "repo_root": REPO_ROOT,
                        "build_timeout": args.build_timeout}
    return args


def _list():
    print("servers:")
    for s in servers.SERVERS:
        print(f"  {s.name:<16} formats {','.join(s.formats):<10} runs {','.join(s.features):<8} {s.note}")
    print("scenarios:")
    for r in scenarios.SCENARIOS:
        print(f"  {r.name:<22} {r.image:<5} {','.join(r.tags):<12} needs {','.join(r.needs):<15} {r.title}")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _choose_parent(explicit):
    if explicit:
        os.makedirs(explicit, exist_ok=True)
        fs = machine.filesystem_of(explicit)["fstype"]
        if fs in ("tmpfs", "ramfs"):
            util.loud(f"--workdir {explicit} is on {fs}: images live in RAM, so the servers' write "
                      f"paths are not what they are on a disk. Results are not comparable with "
                      f"disk-backed runs.")
        return explicit
    for candidate in (os.environ.get("TMPDIR"), "/var/tmp", os.path.join(BENCH_DIR, ".work")):
        if not candidate:
            continue
        os.makedirs(candidate, exist_ok=True)
        if machine.filesystem_of(candidate)["fstype"] not in ("tmpfs", "ramfs"):
            return candidate
    raise RuntimeError("no disk-backed scratch directory found; pass --workdir")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        _list()
        return EXIT_OK
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    started = util.utc_now()
    cmdlog = util.CommandLog()

    needed = {t for r in args.rows for t in r.tools} | ({"fio"} if args.warmup else set())
    absent = sorted(t for t in needed if shutil.which(t) is None)
    if absent:
        print(f"peers: error: required tool(s) not found on PATH: {', '.join(absent)} "
              f"(Debian: apt-get install fio libnbd-bin)", file=sys.stderr)
        return EXIT_ERROR
    if shutil.which("nbdinfo") is None:
        util.warn("nbdinfo not found: export flags (size, multi-conn) will not be recorded")

    # Check every server before touching the disk; skip the unusable ones loudly.
    prepared, usable = {}, []
    for name in args.server_names:
        spec = servers.BY_NAME[name]
        result = servers.prepare(spec, args.server_opts, cmdlog)
        prepared[name] = result
        if result.ok:
            util.info(f"{name}: ready ({result.version or 'version unknown'})")
            usable.append(spec)
        else:
            util.loud(f"{name}: SKIPPED, it will not be measured in this run.\n  {result.reason}")
    if not usable:
        print("peers: error: no usable server; nothing to measure", file=sys.stderr)
        return EXIT_ERROR

    parent = _choose_parent(args.workdir)
    need = args.size * (len(usable) + 2)   # the base, one copy per server, one copy a row may write
    free = shutil.disk_usage(parent).free
    if free < need * 1.1:
        print(f"peers: error: {parent} has {free >> 20} MiB free; the images need {need >> 20} MiB",
              file=sys.stderr)
        return EXIT_ERROR
    _remove_stale(parent)
    workdir = tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent)
    with open(os.path.join(workdir, OWNER_FILE), "w") as f:
        f.write(f"{os.getpid()}\n")
    util.info(f"scratch directory {workdir} ({machine.filesystem_of(workdir)['fstype']}); "
              f"size {util.format_size(args.size)}, {args.rounds} round(s), {args.runtime} s per "
              f"fio job, rows: {', '.join(r.name for r in args.rows)}")

    images = ImageSet(workdir, args.size, cmdlog)
    run = runner.Run(args, usable, args.rows, cmdlog, images, workdir)
    interrupted = False
    t0 = time.monotonic()
    try:
        run.execute()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            run.stop_all()
            log_tails = _log_tails(workdir)
            if args.keep:
                os.unlink(os.path.join(workdir, OWNER_FILE))
                util.info(f"kept {workdir}")
            else:
                images.remove()
                shutil.rmtree(workdir, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        print("\npeers: interrupted; every server stopped, scratch files removed"
              + (" (kept by --keep)" if args.keep else "") + "; no JSON written", file=sys.stderr)
        return EXIT_INTERRUPTED

    names = args.server_names
    not_measured = {n: prepared[n].reason for n in names if not prepared[n].ok}
    not_measured.update(run.failed)
    summary = report.summarize(run.samples, args.rows, names, args.baseline)
    table = report.render(summary, args.rows, names, args.baseline, not_measured, args.rounds)
    loads = [s["loadavg_before"][0] for s in run.samples if s.get("loadavg_before")]
    if loads:
        table += (f"\n\nMachine: {os.cpu_count()} CPUs; 1-minute load average before the jobs "
                  f"{min(loads):.2f}..{max(loads):.2f} (other work on the machine shows up as "
                  f"wide [min..max] ranges). "
                  + _ratio_note(args, names, not_measured))
    print()
    print(table)
    if not_measured:
        util.loud("NOT MEASURED in this run:\n" + "\n".join(
            f"  {n}: {reason.splitlines()[0] if reason else ''}"
            for n, reason in not_measured.items())
                  + ("\nThe ratio columns are empty because the baseline was not measured."
                     if args.baseline in not_measured else ""))

    doc = {
        "schema": "blockshot-peers/1",
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": util.utc_now().isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "argv": ["bench/peers"] + (sys.argv[1:] if argv is None else list(argv)),
        "settings": {"servers": names, "scenarios": [r.name for r in args.rows],
                     "rounds": args.rounds, "size_bytes": args.size, "runtime_s": args.runtime,
                     "warmup_s": args.warmup, "ramp_time_s": args.ramp_time, "quick": args.quick,
                     "baseline": args.baseline, "order": "rotated by round (A B C, B C A, ...)",
                     "sync_before_each_job": True, "mb": "10^6 bytes"},
        "machine": machine.machine_info(),
        "tools": machine.tool_versions(),
        "git": machine.git_info(REPO_ROOT),
        "workdir": {"path": workdir, "kept": args.keep, **machine.filesystem_of(parent)},
        "servers": {n: {"status": "measured" if n not in not_measured else
                        ("skipped" if not prepared[n].ok else "failed"),
                        "reason": not_measured.get(n), "version": prepared[n].version,
                        "details": prepared[n].details, "template": servers.BY_NAME[n].note,
                        **run.servers.get(n, {}), "log_tail": log_tails.get(n)} for n in names},
        "scenarios": [{"name": r.name, "title": r.title, "image": r.image, "tags": list(r.tags),
                       "params": r.params,
                       "metrics": [{"key": m.key, "unit": m.unit,
                                    "higher_is_better": m.higher_is_better} for m in r.metrics]}
                      for r in args.rows],
        "summary": summary,
        "samples": run.samples,
        "commands": cmdlog.entries,
        "table": table,
    }
    path = args.json_path or os.path.join(RESULTS_DIR, f"peers-{util.utc_stamp(started)}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    print(f"\npeers: wrote {path}")
    if not run.samples or all(s["error"] for s in run.samples):
        return EXIT_ERROR
    return EXIT_PARTIAL if not_measured else EXIT_OK


def _ratio_note(args, names, not_measured):
    bases = []
    for row in args.rows:
        base = report.row_baseline(row, args.baseline)
        if base not in bases:
            bases.append(base)
    present = [b for b in bases if b in names and b not in not_measured]
    if not present:
        return f"No ratios: the baseline ({', '.join(bases)}) was not measured or not in --servers."
    return f"Ratios are {' and '.join(present)}/peer of the medians (each row divides by its own baseline)."


def _remove_stale(parent):
    """Scratch directories left by a run that was killed outright (SIGKILL, power loss).

    Only directories with our prefix and an owner.pid naming a process that no longer exists are
    removed; --keep directories of finished runs have no live owner either, so they are kept only
    while their owner file is absent (--keep deletes it at the end of the run).
    """
    for entry in os.listdir(parent):
        path = os.path.join(parent, entry)
        owner = os.path.join(path, OWNER_FILE)
        if not entry.startswith(SCRATCH_PREFIX) or not os.path.isfile(owner):
            continue
        try:
            with open(owner) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if os.path.exists(f"/proc/{pid}"):
            continue
        util.info(f"removing {path}, left by an earlier run (process {pid}) that was killed")
        shutil.rmtree(path, ignore_errors=True)


def _log_tails(workdir):
    tails = {}
    try:
        names = os.listdir(workdir)
    except OSError:
        return tails
    for entry in sorted(names):
        if entry.endswith(".log"):
            server = entry.rsplit("-", 1)[0]
            with open(os.path.join(workdir, entry), errors="replace") as f:
                tails.setdefault(server, {})[entry] = util.tail(f.read(), 30)
    return tails
