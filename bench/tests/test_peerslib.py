"""Tests for the peer benchmark harness: /usr/bin/python3 -m unittest discover -s bench/tests

The process tests use a stand-in launcher that runs nbdkit's memory plugin behind a shell parent.
It exercises the harness's Blockshot code path (build step, socket wait, finding the pid that owns
the socket, teardown); what it measures is nbdkit and is thrown away, never reported.
"""

import json
import os
import shutil
import stat
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from peerslib import (cli, daemon_rows, fio, fuse_mounts, procs, report, runner, scenarios, servers,  # noqa: E402
                      snapshot_rows, util)
from peerslib import cbt_rows  # noqa: E402  (after scenarios, which imports the row modules)

FIO_STDOUT = "fio: connected to NBD server\n" + json.dumps({
    "fio version": "fio-3.33",
    "jobs": [{"jobname": "x", "error": 0,
              "read": {"iops": 1000.5, "bw_bytes": 4098048,
                       "clat_ns": {"percentile": {"50.000000": 412000, "99.000000": 1550300,
                                                  "99.900000": 3000000}}},
              "write": {"iops": 0, "bw_bytes": 0, "clat_ns": {}}}],
})


class PureHelpers(unittest.TestCase):
    def test_sizes_parse_in_binary_units(self):
        self.assertEqual(util.parse_size("1G"), 1 << 30)
        self.assertEqual(util.parse_size("256M"), 256 << 20)
        self.assertEqual(util.parse_size("1GiB"), 1 << 30)
        self.assertEqual(util.parse_size("4096"), 4096)
        self.assertEqual(util.format_size(1 << 30), "1G")
        with self.assertRaises(ValueError):
            util.parse_size("lots")

    def test_numbers_keep_at_least_three_significant_figures(self):
        self.assertEqual(util.format_number(41234.5), "41,234")
        self.assertEqual(util.format_number(0.01234), "0.0123")
        self.assertEqual(util.format_number(3.456), "3.46")
        self.assertEqual(util.format_number(None), "-")

    def test_rotation_gives_every_server_every_position(self):
        order = ["a", "b", "c"]
        self.assertEqual([runner.rotate(order, r) for r in range(3)],
                         [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]])

    def test_fio_json_is_found_after_the_nbd_banner(self):
        job = fio.parse_output(FIO_STDOUT)["jobs"][0]
        self.assertAlmostEqual(fio.iops(job, "read"), 1000.5)
        self.assertAlmostEqual(fio.mb_per_s(job, "read"), 4.098048)

    def test_latency_percentiles_come_back_in_microseconds(self):
        job = fio.parse_output(FIO_STDOUT)["jobs"][0]
        self.assertEqual(fio.latency_percentiles_us(job, "read", (50, 99.9)),
                         {50.0: 412.0, 99.9: 3000.0})
        with self.assertRaises(fio.FioError):
            fio.latency_percentiles_us(job, "read", (99.999,))
        with self.assertRaises(fio.FioError):
            fio.latency_percentiles_us(job, "write")

    def test_uncommon_percentiles_are_requested_from_fio(self):
        argv = fio.nbd_argv("nbd+unix:///x?socket=/s", name="n", rw="randread", bs="4k",
                            iodepth=1, size=1 << 20, runtime=1, percentiles=(50, 99.999))
        self.assertIn("--percentile_list=50:99.999", argv)

    def test_scenarios_select_by_name_and_tag_in_table_order(self):
        rows = scenarios.select("nbdcopy-read,randread-4k-qd32")
        self.assertEqual([r.name for r in rows], ["randread-4k-qd32", "nbdcopy-read"])
        self.assertEqual(len(scenarios.select("foundation")), 5)
        with self.assertRaises(ValueError):
            scenarios.select("nope")

    def test_ratios_are_of_medians_and_of_paired_rounds(self):
        row = scenarios.BY_NAME["nbdcopy-read"]

        def sample(rnd, server, value):
            return {"round": rnd, "scenario": row.name, "server": server, "error": None,
                    "metrics": {"mb_s": value}, "process": {"rss_peak_kib": 2048, "cpu_s": 1.0}}

        samples = [sample(1, "blockshot", 200), sample(1, "nbdkit", 100),
                   sample(2, "blockshot", 300), sample(2, "nbdkit", 300),
                   sample(3, "blockshot", 100), sample(3, "nbdkit", 200)]
        summary = report.summarize(samples, [row], ["blockshot", "nbdkit", "qemu-nbd"], "blockshot")
        entry = summary[row.name]
        self.assertEqual(entry["servers"]["blockshot"]["mb_s"]["median"], 200)
        ratio = entry["ratios"]["blockshot/nbdkit"]["mb_s"]
        self.assertAlmostEqual(ratio["of_medians"], 1.0)
        self.assertEqual(ratio["paired"], [2.0, 1.0, 0.5])
        self.assertNotIn("blockshot/qemu-nbd", entry["ratios"])
        self.assertEqual(entry["servers"]["nbdkit"]["rss_peak_mib"]["median"], 2.0)
        text = report.render(summary, [row], ["blockshot", "nbdkit", "qemu-nbd"], "blockshot",
                             {"qemu-nbd": "missing"}, 3)
        self.assertIn("1.00x", text)
        self.assertIn("not run", text)

    def test_server_command_lines_follow_the_documented_templates(self):
        launch = servers.Launch(image="/w/i.raw", fmt="raw", socket="/w/s.sock")
        opts = {"blockshot": "/repo/blockshot"}
        cmd = {s.name: s.command(s, launch, opts) for s in servers.SERVERS}
        self.assertEqual(cmd["blockshot"], ["/repo/blockshot", "serve", "/w/i.raw", "-f", "raw",
                                            "--socket", "/w/s.sock", "--name", "disk",
                                            "--shared", "8"])
        self.assertEqual(cmd["qemu-nbd"], ["qemu-nbd", "-f", "raw", "-t", "-e", "8",
                                           "--cache=writeback", "-x", "disk", "-k", "/w/s.sock",
                                           "/w/i.raw"])
        self.assertEqual(cmd["nbdkit"], ["nbdkit", "-U", "/w/s.sock", "-f", "file", "/w/i.raw"])
        self.assertEqual(launch.uri, "nbd+unix:///disk?socket=/w/s.sock")


    def test_servers_are_chosen_by_what_the_rows_need(self):
        self.assertEqual(servers.default_names(scenarios.select("foundation")),
                         ["blockshot", "qemu-nbd", "nbdkit"])
        self.assertEqual(servers.default_names(scenarios.select("daemon")), ["blockshot-daemon", "qemu-img"])
        mirror = scenarios.BY_NAME["mirror-vs-convert"]
        swap = scenarios.BY_NAME["filter-swap-under-load"]
        self.assertTrue(servers.BY_NAME["qemu-img"].supports(mirror))
        self.assertFalse(servers.BY_NAME["qemu-img"].supports(swap))
        self.assertFalse(servers.BY_NAME["blockshot"].supports(mirror))
        self.assertFalse(servers.BY_NAME["blockshot-daemon"].supports(scenarios.BY_NAME["randread-4k-qd32"]))

    def test_qcow2_rows_pair_servers_with_qemu_nbd_and_tools_with_qemu_img(self):
        rows = scenarios.select("qcow2")
        self.assertEqual(servers.default_names(rows), ["blockshot", "qemu-nbd", "qemu-img", "blockshot-image"])
        convert = scenarios.BY_NAME["convert-qcow2-to-raw"]
        read = scenarios.BY_NAME["qcow2-randread-4k-qd32"]
        self.assertEqual((convert.image, convert.baseline), ("qcow2", "blockshot-image"))
        self.assertTrue(servers.BY_NAME["blockshot"].supports(read))
        self.assertFalse(servers.BY_NAME["blockshot-image"].supports(read))
        self.assertTrue(servers.BY_NAME["qemu-img"].supports(convert))
        self.assertFalse(servers.BY_NAME["blockshot-image"].supports(scenarios.BY_NAME["mirror-vs-convert"]))
        launch = servers.Launch(image="/w/i.qcow2", fmt="qcow2", socket="/w/s.sock")
        spec = servers.BY_NAME["blockshot"]
        self.assertEqual(spec.command(spec, launch, {"blockshot": "/repo/blockshot"})[3:5], ["-f", "qcow2"])

    def test_ratio_columns_only_for_pairs_some_row_measured(self):
        convert = scenarios.BY_NAME["convert-raw-to-qcow2"]
        read = scenarios.BY_NAME["qcow2-randread-4k-qd32"]

        def sample(row, server, value):
            return {"round": 1, "scenario": row.name, "server": server, "error": None,
                    "metrics": {m.key: value for m in row.metrics}, "process": None}

        names = ["blockshot", "qemu-nbd", "qemu-img", "blockshot-image"]
        samples = [sample(read, "blockshot", 30.0), sample(read, "qemu-nbd", 20.0),
                   sample(convert, "qemu-img", 100.0), sample(convert, "blockshot-image", 200.0)]
        summary = report.summarize(samples, [read, convert], names, "blockshot")
        header = report.render(summary, [read, convert], names, "blockshot", {}, 1).splitlines()[1]
        self.assertIn("blockshot/qemu-nbd", header)
        self.assertIn("blockshot-image/qemu-img", header)
        self.assertNotIn("blockshot/qemu-img", header)
        self.assertNotIn("blockshot-image/qemu-nbd", header)

    def test_the_daemon_gets_a_configuration_with_one_exported_device(self):
        with tempfile.TemporaryDirectory() as d:
            launch = servers.Launch(image=os.path.join(d, "i.raw"), fmt="raw", socket=os.path.join(d, "s.sock"))
            spec = servers.BY_NAME["blockshot-daemon"]
            argv = spec.command(spec, launch, {"blockshot": "/repo/blockshot"})
            self.assertEqual(argv, ["/repo/blockshot", "daemon", "--control", os.path.join(d, "s.control"),
                                    "--nbd-socket", launch.socket, "--config", os.path.join(d, "s.json")])
            spec.setup(spec, launch)
            with open(os.path.join(d, "s.json")) as f:
                config = json.load(f)
            self.assertEqual(config["devices"], [{"name": "disk", "file": launch.image, "format": "raw",
                                                  "read-only": False}])
            self.assertEqual(config["exports"], [{"device": "disk", "name": "disk"}])
            self.assertEqual(servers.daemon_control(launch), os.path.join(d, "s.control"))

    def test_rows_with_their_own_baseline_divide_by_it(self):
        mirror = scenarios.BY_NAME["mirror-vs-convert"]
        swap = scenarios.BY_NAME["filter-swap-under-load"]

        def sample(rnd, row, server, metrics):
            return {"round": rnd, "scenario": row.name, "server": server, "error": None, "metrics": metrics,
                    "process": None}

        samples = [sample(1, mirror, "blockshot-daemon", {"mb_s": 300}), sample(1, mirror, "qemu-img", {"mb_s": 200}),
                   sample(1, swap, "blockshot-daemon", {"swap_p50_ms": 1.0, "swap_p99_ms": 4.0, "iops": 1000})]
        names = ["blockshot-daemon", "qemu-img"]
        summary = report.summarize(samples, [swap, mirror], names, "blockshot")
        self.assertAlmostEqual(summary[mirror.name]["ratios"]["blockshot-daemon/qemu-img"]["mb_s"]["of_medians"], 1.5)
        self.assertEqual(summary[swap.name]["ratios"], {})
        text = report.render(summary, [swap, mirror], names, "blockshot", {}, 1)
        self.assertIn("1.50x", text)
        self.assertIn("blockshot-daemon/qemu-img", text)
        self.assertIn("Other figures", text)
        self.assertIn("swap_p99_ms", text)

    def test_daemon_row_percentiles_interpolate(self):
        self.assertEqual(daemon_rows._percentile([4, 1, 3, 2], 50), 2.5)
        self.assertEqual(daemon_rows._percentile([5], 99), 5)
        self.assertIsNone(daemon_rows._percentile([], 50))

    def test_fuse_rows_pit_blockshot_against_qemu_storage_daemon_on_loop_devices(self):
        rows = scenarios.select("fuse")
        self.assertEqual([r.name for r in rows], ["fuse-randread-4k-qd32", "fuse-randwrite-4k-qd32",
                                                  "fuse-seqread-1m-qd8", "fuse-seqwrite-1m-qd8"])
        self.assertEqual(servers.default_names(rows), ["blockshot-fuse", "qsd-fuse"])
        self.assertTrue(all(r.baseline == "blockshot-fuse" for r in rows))
        self.assertFalse(servers.BY_NAME["blockshot"].supports(rows[0]))
        launch = servers.Launch(image="/w/i.raw", fmt="raw", socket="/w/qsd-fuse-raw.sock")
        qsd = servers.BY_NAME["qsd-fuse"]
        self.assertEqual(qsd.command(qsd, launch, {}), [
            "qemu-storage-daemon", "--blockdev", "driver=file,node-name=f,filename=/w/i.raw",
            "--blockdev", "driver=raw,node-name=r,file=f",
            "--export", "type=fuse,id=e,node-name=r,mountpoint=/w/qsd-fuse-raw.img,writable=on"])
        ours = servers.BY_NAME["blockshot-fuse"]
        self.assertEqual(ours.command(ours, launch, {"blockshot": "/repo/blockshot"}),
                         ["/repo/blockshot", "serve", "/w/i.raw", "-f", "raw", "--fuse", "/w/qsd-fuse-raw.img", "--loop"])
        argv = fio.device_argv("/dev/loop7", name="n", rw="randwrite", bs="4k", iodepth=32, size=1 << 20, runtime=1)
        self.assertIn("--filename=/dev/loop7", argv)
        self.assertIn("--ioengine=libaio", argv)
        self.assertIn("--direct=1", argv)

    def test_snapshot_rows_pit_the_daemon_against_qemu_storage_daemon_fleecing(self):
        rows = scenarios.select("snapshot")
        self.assertEqual([r.name for r in rows], ["snap-randwrite-fresh-4k-qd32", "snap-randwrite-copied-4k-qd32",
                                                  "snap-read-nbdcopy", "snap-slowstore-randwrite-4k-qd32"])
        self.assertEqual(servers.default_names(rows), ["blockshot-snap", "qsd-snap"])
        self.assertTrue(all(r.baseline == "blockshot-snap" and r.image == "snapraw" for r in rows))
        self.assertFalse(servers.BY_NAME["blockshot-daemon"].supports(rows[0]))
        self.assertFalse(servers.BY_NAME["qsd-snap"].process)
        with tempfile.TemporaryDirectory() as d:
            launch = servers.Launch(image=os.path.join(d, "i.raw"), fmt="snapraw", socket=os.path.join(d, "s.sock"))
            spec = servers.BY_NAME["blockshot-snap"]
            spec.setup(spec, launch)
            with open(os.path.join(d, "s.json")) as f:
                config = json.load(f)
            self.assertEqual(config["devices"], [{"name": "disk", "file": launch.image, "format": "raw"}])

    def test_snapshot_row_command_lines(self):
        self.assertEqual(snapshot_rows.qsd_argv("/w/i.raw", "/w/q.sock"), [
            "qemu-storage-daemon", "--blockdev", "driver=file,node-name=disk0,filename=/w/i.raw",
            "--nbd-server", "addr.type=unix,addr.path=/w/q.sock",
            "--export", "type=nbd,id=live,node-name=disk0,name=live,writable=on"])
        cbw = snapshot_rows.qsd_argv("/w/i.raw", "/w/q.sock", "/w/f.qcow2")
        self.assertIn("driver=copy-before-write,node-name=cbw,file=disk0,target=fleece", cbw)
        self.assertIn("driver=qcow2,node-name=fleece,file=ft", cbw)
        self.assertIn("type=nbd,id=live,node-name=cbw,name=live,writable=on", cbw)
        self.assertIn("type=nbd,id=snap,node-name=snap,name=snap", cbw)
        slow = snapshot_rows.qsd_argv("/w/i.raw", "/w/q.sock", "/w/f.qcow2", throttle_bps=20 << 20)
        self.assertIn("throttle-group,id=tg0,x-bps-total=20971520", slow)
        self.assertIn("driver=throttle,node-name=thr,throttle-group=tg0,file=ft", slow)
        self.assertIn("driver=qcow2,node-name=fleece,file=thr", slow)
        argv = snapshot_rows.counted_writes_argv("nbd+unix:///d?socket=/s", "n", 4 << 30, snapshot_rows.fresh_writes(4 << 30))
        self.assertIn(f"--io_size={8192 * 4096}", argv)   # one write per 8 chunks of 64 KiB
        self.assertIn("--randrepeat=1", argv)
        self.assertNotIn("--time_based", argv)
        self.assertEqual(snapshot_rows.region_size(4 << 30), 1 << 30)
        self.assertEqual(snapshot_rows.region_size(256 << 20), 64 << 20)

    def test_cbt_rows_run_on_one_daemon_with_a_tracked_and_an_untracked_copy(self):
        rows = scenarios.select("cbt")
        self.assertEqual([r.name for r in rows], ["cbt-randwrite-marked-4k-qd32", "cbt-randwrite-fresh-4k-qd32"])
        self.assertEqual(servers.default_names(rows), ["blockshot-cbt"])
        self.assertTrue(all(r.baseline == "blockshot-cbt" and r.image == "cbtraw" for r in rows))
        self.assertTrue(all(r.headline.key == "tracked_over_untracked" for r in rows))
        self.assertFalse(servers.BY_NAME["blockshot-snap"].supports(rows[0]))
        with tempfile.TemporaryDirectory() as d:
            image = os.path.join(d, "i.raw")
            with open(image, "wb") as f:
                f.write(os.urandom(8192))
            launch = servers.Launch(image=image, fmt="cbtraw", socket=os.path.join(d, "s.sock"))
            spec = servers.BY_NAME["blockshot-cbt"]
            self.assertEqual(spec.command(spec, launch, {"blockshot": "/repo/blockshot"})[1], "daemon")
            spec.setup(spec, launch)
            plain = servers.untracked_image(image)
            with open(image, "rb") as a, open(plain, "rb") as b:
                self.assertEqual(a.read(), b.read())
            with open(os.path.join(d, "s.json")) as f:
                config = json.load(f)
            self.assertEqual(config["devices"], [{"name": "disk", "file": image, "format": "raw"},
                                                 {"name": "plain", "file": plain, "format": "raw"}])
            self.assertEqual(config["exports"], [{"device": "disk", "name": "disk"},
                                                 {"device": "plain", "name": "plain"}])

    def test_cbt_rows_alternate_the_order_and_divide_tracked_by_untracked(self):
        self.assertTrue(cbt_rows.tracked_first(1))
        self.assertFalse(cbt_rows.tracked_first(2))
        self.assertTrue(cbt_rows.tracked_first(3))
        ep = scenarios.Endpoint("blockshot-cbt", "nbd+unix:///disk?socket=/w/s.sock", "/w/s.sock", "disk")
        self.assertEqual(cbt_rows.device_uri(ep, "disk"), ep.uri)
        self.assertEqual(cbt_rows.device_uri(ep, "plain"), "nbd+unix:///plain?socket=/w/s.sock")
        self.assertEqual(cbt_rows.fresh_writes(4 << 30), 16384)       # one write per 4 blocks of 64 KiB
        self.assertEqual(cbt_rows.region_size(4 << 30), 1 << 30)
        self.assertEqual(cbt_rows.region_size(256 << 20), 256 << 20)
        argv = cbt_rows.counted_writes_argv(ep.uri, "n", 4 << 30, 16384)
        self.assertIn(f"--io_size={16384 * 4096}", argv)
        self.assertIn("--randrepeat=1", argv)
        self.assertNotIn("--time_based", argv)
        self.assertIn("--time_based", cbt_rows.timed_writes_argv(ep.uri, "n", 1 << 30, 4))
        self.assertIn("--rw=write", cbt_rows.fill_argv(ep.uri, 1 << 30))
        tracked = ({"iops": 900.0, "p50": 1.0, "p99": 2.0, "cpu_us_per_write": 20.0}, {"jobname": "t"})
        untracked = ({"iops": 1000.0, "p50": 1.0, "p99": 2.0, "cpu_us_per_write": 18.0}, {"jobname": "u"})
        sample = cbt_rows._sample(["plain", "disk"], {"disk": tracked, "plain": untracked}, ["fio"], {}, {})
        self.assertAlmostEqual(sample.metrics["tracked_over_untracked"], 0.9)
        self.assertEqual(sample.metrics["untracked_iops"], 1000.0)
        self.assertEqual(sample.raw["order"], ["plain", "disk"])

    def test_each_job_is_told_its_round(self):
        seen = []

        def run(scenario, ctx, ep):
            seen.append(ctx.round)
            return scenarios.Sample({"iops": 1.0}, ["true"])

        row = scenarios.Scenario("r", "r", (scenarios.IOPS,), run, tools=())

        class Opts:
            size, runtime, ramp_time, rounds, warmup, start_timeout = 1 << 20, 1, 0, 3, 0, 5
            server_opts = {}

        class Peer:
            server_pid, uri, socket_path, export_name, image, control, device = None, "", "", "", "", "", ""

            def alive(self):
                return True

        run_ = runner.Run(Opts(), [], [row], util.CommandLog(), None, "/tmp")
        for rnd in range(3):
            run_._measure(rnd, 0, row, "x", Peer())
        self.assertEqual(seen, [1, 2, 3])

    def test_fuse_mounts_and_loop_devices_are_read_from_mountinfo_and_sysfs(self):
        with tempfile.TemporaryDirectory() as d:
            mountinfo = os.path.join(d, "mountinfo")
            with open(mountinfo, "w") as f:
                f.write("36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw\n"
                        "90 36 0:77 / /w/my\\040disk.img rw,nosuid,nodev - fuse.blockshot blockshot rw,user_id=0\n"
                        "91 36 0:78 / /w/plain.img rw - ext4 /dev/sda1 rw\n")
            self.assertTrue(fuse_mounts.is_fuse_mounted("/w/my disk.img", mountinfo))
            self.assertFalse(fuse_mounts.is_fuse_mounted("/w/plain.img", mountinfo))
            self.assertFalse(fuse_mounts.is_fuse_mounted("/w/absent.img", mountinfo))
            for name, backing in (("loop0", "/w/a.img"), ("loop3", "/w/b.img"), ("sda", None)):
                os.makedirs(os.path.join(d, name, "loop" if backing else "queue"))
                if backing:
                    with open(os.path.join(d, name, "loop", "backing_file"), "w") as f:
                        f.write(backing + "\n")
            with open(os.path.join(d, "loop3", "loop", "dio"), "w") as f:
                f.write("1\n")
            self.assertEqual(fuse_mounts.loops_backed_by("/w/b.img", d), ["/dev/loop3"])
            self.assertEqual(fuse_mounts.loops_backed_by("/w/c.img", d), [])
            facts = fuse_mounts.loop_facts("/dev/loop3", d)
            self.assertEqual((facts["direct_io"], facts["backing_file"], facts["logical_block_size"]),
                             (True, "/w/b.img", None))


STAND_IN = textwrap.dedent("""\
    #!/bin/sh
    # Test stand-in for the launcher: serves nbdkit's memory plugin from a child process.
    if [ "$1" = "--version" ]; then echo "stand-in 0.0"; exit 0; fi
    [ "$1" = serve ] || exit 2
    sock=
    while [ $# -gt 0 ]; do
      case "$1" in --socket) sock="$2"; shift ;; esac
      shift
    done
    nbdkit -U "$sock" -f memory 16M &
    wait
    """)


@unittest.skipUnless(shutil.which("nbdkit") and shutil.which("fio") and shutil.which("nbdcopy"),
                     "needs nbdkit, fio and nbdcopy")
class ProcessHandling(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="peers-test-", dir="/var/tmp")
        self.launcher = os.path.join(self.dir, "launcher")
        with open(self.launcher, "w") as f:
            f.write(STAND_IN)
        os.chmod(self.launcher, os.stat(self.launcher).st_mode | stat.S_IEXEC)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_launcher_path_finds_the_socket_owner_and_tears_down(self):
        opts = {"blockshot": self.launcher, "repo_root": self.dir, "build_timeout": 30}
        spec = servers.BY_NAME["blockshot"]
        log = util.CommandLog()
        prepared = servers.prepare(spec, opts, log)
        self.assertTrue(prepared.ok, prepared.reason)
        self.assertEqual(prepared.version, "stand-in 0.0")
        sock = os.path.join(self.dir, "s.sock")
        launch = servers.Launch(image="/dev/null", fmt="raw", socket=sock)
        server = procs.ServerProcess("blockshot", spec.command(spec, launch, opts), sock,
                                     os.path.join(self.dir, "s.log"), cwd=self.dir)
        try:
            server.start(log, timeout=20)
            self.assertNotEqual(server.server_pid, server.popen.pid)
            self.assertIn(server.server_pid, server.tree_pids)
            with procs.ProcessSampler(server.server_pid) as sampler:
                proc = log.run(["nbdcopy", launch.uri, "null:"], "read")
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertGreater(sampler.result["rss_peak_kib"], 0)
        finally:
            server.stop()
        self.assertFalse(os.path.exists(sock))
        with self.assertRaises(ProcessLookupError):
            os.killpg(server.popen.pid, 0)

    def test_missing_launcher_is_skipped_with_a_reason(self):
        opts = {"blockshot": os.path.join(self.dir, "absent"), "repo_root": self.dir,
                "build_timeout": 30}
        prepared = servers.prepare(servers.BY_NAME["blockshot"], opts, util.CommandLog())
        self.assertFalse(prepared.ok)
        self.assertIn("does not exist", prepared.reason)

    def test_a_server_that_dies_at_start_is_reported(self):
        server = procs.ServerProcess("x", ["sh", "-c", "echo boom; exit 7"],
                                     os.path.join(self.dir, "x.sock"),
                                     os.path.join(self.dir, "x.log"))
        with self.assertRaises(procs.ServerStartError) as caught:
            server.start(util.CommandLog(), timeout=10)
        server.stop()
        self.assertIn("boom", str(caught.exception))

    def test_whole_run_through_the_launcher_path(self):
        out = os.path.join(self.dir, "r.json")
        code = cli.main(["--servers", "blockshot,nbdkit", "--blockshot", self.launcher,
                         "--size", "16M", "--rounds", "1", "--runtime", "1", "--warmup", "0",
                         "--scenarios", "randread-4k-qd32,nbdcopy-read", "--workdir", self.dir,
                         "--json", out])
        self.assertEqual(code, 0)
        with open(out) as f:
            doc = json.load(f)
        self.assertEqual(len(doc["samples"]), 4)
        self.assertIn("blockshot/nbdkit", doc["summary"]["randread-4k-qd32"]["ratios"])
        self.assertEqual([e for e in os.listdir(self.dir) if e.startswith("blockshot-peers-")], [])


if __name__ == "__main__":
    unittest.main()
