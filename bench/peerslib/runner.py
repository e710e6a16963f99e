"""The measurement loop.

For each image kind the selected rows need: every server gets its own copy of the image and is
started once; each gets the same short warm-up; then for each round, for each row, the servers run
one after another in an order rotated by the round (A B C, then B C A, then C A B), so slow drift on
the machine falls on all of them alike. Before every job the page cache's dirty data is flushed
(sync), and while the job runs the server's RSS and CPU time are sampled.
"""

import dataclasses
import json
import os

from . import fuse_mounts, procs, scenarios, servers as server_specs, util
from .fio import device_argv, nbd_argv
from .servers import Launch


class ToolPeer:
    """A peer that is a tool run per job (qemu-img convert): nothing to start, stop or sample."""

    def __init__(self, image):
        self.image = image
        self.uri = ""
        self.socket_path = ""
        self.export_name = ""
        self.control = ""
        self.device = ""
        self.server_pid = None
        self.startup_s = 0.0

    def alive(self):
        return True

    def stop(self):
        pass


def rotate(items, k):
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


class Run:
    def __init__(self, opts, specs, rows, cmdlog, images, workdir):
        self.opts = opts
        self.specs = specs                    # ServerSpec, in --servers order, usable ones only
        self.rows = rows
        self.cmdlog = cmdlog
        self.images = images
        self.workdir = workdir
        self.samples = []
        self.failed = {}                      # server -> reason it stopped being measured
        self.unsupported = {}                 # (server, image kind) -> reason
        self.servers = {}                     # server -> facts (command, pid, startup, export)
        self.running = []                     # ServerProcess, for teardown
        self.ctx = scenarios.RunContext(cmdlog, opts.size, opts.runtime, opts.ramp_time,
                                        timeout=opts.runtime + opts.ramp_time + 120,
                                        server_opts=opts.server_opts, start_timeout=opts.start_timeout)

    # -- public ---------------------------------------------------------------------------------

    def execute(self):
        kinds = []
        for row in self.rows:
            if row.image not in kinds:
                kinds.append(row.image)
        for kind in kinds:
            group = [r for r in self.rows if r.image == kind]
            try:
                self._run_group(kind, group)
            finally:
                self.stop_all()

    def stop_all(self):
        while self.running:
            server = self.running.pop()
            server.stop()

    # -- one image kind -------------------------------------------------------------------------

    def _run_group(self, kind, group):
        names = []
        for spec in self.specs:
            if spec.name in self.failed:
                continue
            if kind not in spec.formats:
                self.unsupported[(spec.name, kind)] = f"{spec.name} does not serve {kind} images"
                continue
            if not any(spec.supports(row) for row in group):
                continue
            names.append(spec.name)
        if not names:
            return
        copies = self.images.copies(kind, names)
        live = {}
        for name in names:
            server = self._start(name, kind, copies[name])
            if server is not None:
                live[name] = server
        for name, server in live.items():
            self._warm_up(name, server)
        order = [n for n in names if n in live]
        for rnd in range(self.opts.rounds):
            for row in group:
                for pos, name in enumerate(rotate([n for n in order if self._spec(n).supports(row)], rnd)):
                    if name in self.failed:
                        continue
                    self._measure(rnd, pos, row, name, live[name])

    def _spec(self, name):
        return next(s for s in self.specs if s.name == name)

    def _start(self, name, kind, image):
        spec = self._spec(name)
        if not spec.process:
            self.servers.setdefault(name, {}).setdefault("runs", []).append(
                {"image_kind": kind, "command": "(run per job)", "image": image})
            return ToolPeer(image)
        sock = os.path.join(self.workdir, f"{name}-{kind}.sock")
        if len(sock.encode()) > 107:
            raise RuntimeError(f"socket path too long for AF_UNIX ({sock}); "
                               f"use a shorter --workdir")
        launch = Launch(image=image, fmt=kind, socket=sock)
        if spec.setup is not None:
            spec.setup(spec, launch)
        argv = spec.command(spec, launch, self.opts.server_opts)
        cwd = spec.cwd(self.opts.server_opts) if spec.cwd else None
        log = os.path.join(self.workdir, f"{name}-{kind}.log")
        ready = (lambda: spec.ready(launch)) if spec.ready is not None else None
        server = procs.ServerProcess(name, argv, sock, log, cwd=cwd, ready=ready)
        self.running.append(server)
        util.info(f"starting {name}: {util.shell_join(argv)}")
        try:
            server.start(self.cmdlog, self.opts.start_timeout)
        except procs.ServerStartError as exc:
            self._fail(name, f"could not start: {exc}")
            server.stop()
            self.running.remove(server)
            return None
        server.device = ""
        if spec.attach is not None:
            try:
                server.device, undo = spec.attach(spec, launch, self.cmdlog)
            except (OSError, RuntimeError) as exc:
                self._fail(name, f"could not attach its block device: {exc}")
                server.stop()
                self.running.remove(server)
                return None
            if undo is not None:
                server.before_stop.append(undo)
        facts = self.servers.setdefault(name, {})
        facts.setdefault("runs", []).append({
            "image_kind": kind, "command": util.shell_join(argv), "cwd": cwd, "uri": launch.uri,
            "spawned_pid": server.popen.pid, "server_pid": server.server_pid,
            "tree_pids": server.tree_pids, "startup_s": round(server.startup_s, 3),
            "rss_idle_kib": procs.rss_kib(server.server_pid),
            "export": (self._export_info(name, launch.uri) if spec.ready is None
                       else fuse_mounts.loop_facts(server.device) if server.device else {}),
        })
        server.uri = launch.uri if spec.ready is None else ""
        server.export_name = launch.name
        server.image = image
        # The daemon's control socket, for rows that drive it (the daemon rows, the snapshot rows).
        server.control = (server_specs.daemon_control(launch)
                          if {"daemon", "snapshot", "cbt"} & set(spec.features) else "")
        return server

    def _export_info(self, name, uri):
        """nbdinfo --json --no-content: size and flags as the server advertises them.

        Multi-conn matters: nbdcopy opens several connections only when it is advertised.
        """
        proc = self.cmdlog.run(["nbdinfo", "--json", "--no-content", uri], f"export info {name}",
                               timeout=30)
        if proc.returncode != 0:
            util.warn(f"nbdinfo against {name} failed: {proc.stderr.strip()[-300:]}")
            return {"error": proc.stderr.strip()[-300:]}
        try:
            export = json.loads(proc.stdout)["exports"][0]
        except (ValueError, KeyError, IndexError) as exc:
            return {"error": f"unparsable nbdinfo output: {exc}"}
        size = export.get("export-size")
        if size is not None and size != self.opts.size:
            util.warn(f"{name} exports {size} bytes, expected {self.opts.size}")
        return export

    def _warm_up(self, name, server):
        """The same short 4k random read for every server before anything is measured."""
        if not self.opts.warmup or not (server.uri or server.device):
            return
        if server.device:
            argv = device_argv(server.device, name="warmup", rw="randread", bs="4k", iodepth=32,
                               size=self.opts.size, runtime=self.opts.warmup)
        else:
            argv = nbd_argv(server.uri, name="warmup", rw="randread", bs="4k", iodepth=32,
                            size=self.opts.size, runtime=self.opts.warmup)
        proc = self.cmdlog.run(argv, f"warm-up {name}", timeout=self.opts.warmup + 60)
        if proc.returncode != 0:
            util.warn(f"warm-up against {name} failed: {proc.stderr.strip()[-300:]}")

    # -- one job --------------------------------------------------------------------------------

    def _measure(self, rnd, pos, row, name, server):
        if not server.alive():
            self._fail(name, f"the server exited (status {server.popen.returncode}); "
                             f"log {server.log_path}:\n{server.log_tail()}")
            return
        ep = scenarios.Endpoint(name, server.uri, server.socket_path, server.export_name,
                                image=server.image, control=server.control, device=server.device)
        os.sync()
        record = {
            "round": rnd + 1, "position": pos, "scenario": row.name, "server": name,
            "started_utc": util.utc_now().isoformat(timespec="milliseconds"),
            "loadavg_before": procs.loadavg(), "metrics": {}, "error": None,
        }
        first_cmd = len(self.cmdlog.entries)
        try:
            with procs.ProcessSampler(server.server_pid) as sampler:  # pid None: a tool peer, nothing sampled
                sample = row.run(row, dataclasses.replace(self.ctx, round=rnd + 1), ep)
            record["metrics"] = sample.metrics
            record["command"] = util.shell_join(sample.argv)
            record["raw"] = sample.raw
        except scenarios.JobError as exc:
            record["error"] = str(exc)
            util.warn(f"{row.name} on {name}, round {rnd + 1}: {exc}")
        record["process"] = sampler.result if sampler.result else None
        record["command_indexes"] = list(range(first_cmd, len(self.cmdlog.entries)))
        self.samples.append(record)
        self._progress(record, row)
        if not server.alive():
            self._fail(name, f"the server exited during {row.name} (status "
                             f"{server.popen.returncode}); log {server.log_path}:\n"
                             f"{server.log_tail()}")

    def _progress(self, record, row):
        head = row.headline
        value = record["metrics"].get(head.key)
        proc = record.get("process") or {}
        rss = proc.get("rss_peak_kib")
        shown = "FAILED" if record["error"] else f"{util.format_number(value)} {head.unit}"
        util.info(f"round {record['round']}/{self.opts.rounds}  {row.name:<18} "
                  f"{record['server']:<10} {shown:>16}   rss peak "
                  f"{'-' if rss is None else f'{rss / 1024:.1f} MiB'}")

    def _fail(self, name, reason):
        if name not in self.failed:
            self.failed[name] = reason
            util.loud(f"{name}: NOT MEASURED further in this run: {reason}")
