"""qcow2 rows (tag 'qcow2'): 'blockshot serve' vs 'qemu-nbd' on qcow2, 'blockshot image convert' vs
'qemu-img convert'.

Serving (servers 'blockshot' and 'qemu-nbd', each on its own copy of one qcow2 image that qemu-img
converted from the random raw base, so every cluster is allocated and both files are laid out alike):
- qcow2-randread-4k-qd32, qcow2-seqread-1m-qd8, qcow2-seqwrite-1m-qd8: the usual fio jobs on the
  allocated image (the sequential writes overwrite allocated clusters).
- qcow2-randwrite-alloc-4k-qd32: 4k random writes that allocate. Every round starts the server afresh
  on its own copy of one empty qcow2 image (qemu-img create, default options, 8x --size virtual). fio
  writes SIZE/32k requests at 64 KiB-aligned random offsets (--blockalign), so about 7 in 8 writes land
  in a cluster nobody wrote yet and allocate it. A fixed number of requests, not a fixed time: the
  figure is IOPS over the whole job. RSS is not sampled for this row (the server is the row's own).

Converting (tool peers 'blockshot-image' and 'qemu-img', each run once per job on its own copy of
the source; wall time around the whole command, process start included; target cache mode 'unsafe'
for both, their default; MB/s = virtual size / time):
- convert-raw-to-qcow2: the random raw base to a new qcow2.
- convert-qcow2-to-raw: the allocated qcow2 above to a new raw file.
- convert-compressed: 'convert -c -f raw -O qcow2' of a compressible raw image (each MiB: 256 KiB
  random, 512 KiB of one repeated random 4 KiB block, 256 KiB of zeros).
"""

import os
import time

from . import fio, procs, util
from .images import ImageKind, KINDS, make_raw_base
from .scenarios import IOPS, MBPS, P50, P99, JobError, Sample, Scenario, fio_nbd
from . import servers as server_specs
from .servers import Launch

ALLOC_VIRTUAL_FACTOR = 8        # the fresh image's virtual size, in multiples of --size
ALLOC_STRIDE = 32 << 10         # one write per 32 KiB of --size
ALLOC_ALIGN = 64 << 10          # the default cluster size: each write starts a cluster


# -- image kinds ----------------------------------------------------------------------------------

def _make_qcow2_base(path, size, workdir, cmdlog):
    """qemu-img convert of random data: a fully allocated qcow2 with default options."""
    raw = path + ".src.raw"
    try:
        make_raw_base(raw, size, workdir, cmdlog)
        proc = cmdlog.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, path],
                          "make base qcow2 image")
        if proc.returncode != 0:
            raise RuntimeError(f"qemu-img convert to {path} failed: {proc.stderr.strip()}")
    finally:
        if os.path.exists(raw):
            os.unlink(raw)


def _make_compressible_base(path, size, workdir, cmdlog):
    """A raw image a compressor can work on: per MiB, 256K random, 512K of a repeated 4K block, 256K zeros."""
    cmdlog.note(["python3", "(write compressible image)", path], "make compressible raw image")
    mib = 1 << 20
    with open(path, "wb") as out:
        for _ in range(size // mib):
            block = os.urandom(4096)
            out.write(os.urandom(256 << 10))
            out.write(block * 128)
            out.write(bytes(256 << 10))
    if os.path.getsize(path) != size:
        raise RuntimeError(f"could not write {path}")


KINDS["qcow2"] = ImageKind("qcow2", ".qcow2", _make_qcow2_base)
KINDS["compressible"] = ImageKind("compressible", ".compressible.raw", _make_compressible_base)


# -- 4k random writes that allocate ----------------------------------------------------------------

def _fresh_base(ctx, workdir, virtual):
    """The empty qcow2 every round copies (made once per run by qemu-img create)."""
    path = os.path.join(workdir, "alloc-base.qcow2")
    if not os.path.exists(path):
        proc = ctx.cmdlog.run(["qemu-img", "create", "-q", "-f", "qcow2", path, str(virtual)],
                              "make the empty qcow2 for allocating writes")
        if proc.returncode != 0:
            raise JobError(f"qemu-img create failed: {proc.stderr.strip()}")
    return path


def _run_randwrite_alloc(scenario, ctx, ep):
    spec = server_specs.BY_NAME[ep.server]
    workdir = os.path.dirname(ep.image)
    virtual = ctx.size * ALLOC_VIRTUAL_FACTOR
    base = _fresh_base(ctx, workdir, virtual)
    image = os.path.join(workdir, f"alloc-{ep.server}.qcow2")
    sock = os.path.join(workdir, f"alloc-{ep.server}.sock")
    log = os.path.join(workdir, f"alloc-{ep.server}.log")
    writes = ctx.size // ALLOC_STRIDE
    proc = ctx.cmdlog.run(["cp", "--reflink=never", base, image], f"fresh image for {ep.server}")
    if proc.returncode != 0:
        raise JobError(f"cp failed: {proc.stderr.strip()}")
    launch = Launch(image=image, fmt="qcow2", socket=sock)
    server = procs.ServerProcess(f"{ep.server} (fresh image)", spec.command(spec, launch, ctx.server_opts),
                                 sock, log, cwd=spec.cwd(ctx.server_opts) if spec.cwd else None)
    try:
        try:
            server.start(ctx.cmdlog, ctx.start_timeout)
        except procs.ServerStartError as exc:
            raise JobError(f"could not start on a fresh image: {exc}") from exc
        os.sync()
        argv = ["fio", f"--name={scenario.name}", "--ioengine=nbd", f"--uri={launch.uri}", "--rw=randwrite",
                "--bs=4k", f"--blockalign={ALLOC_ALIGN}", "--iodepth=32", f"--size={virtual}",
                f"--io_size={writes * 4096}", "--randrepeat=1", "--numjobs=1", "--output-format=json"]
        run = ctx.cmdlog.run(argv, f"{scenario.name} on {ep.server}", timeout=ctx.timeout)
        if run.returncode != 0:
            raise JobError(f"fio exited {run.returncode}: {run.stderr.strip()[-500:]}")
        try:
            job = fio.parse_output(run.stdout)["jobs"][0]
        except fio.FioError as exc:
            raise JobError(f"{exc}; stderr: {run.stderr.strip()[-300:]}") from exc
        pct = fio.latency_percentiles_us(job, "write", (50.0, 99.0))
        metrics = {IOPS.key: fio.iops(job, "write"), P50.key: pct[50.0], P99.key: pct[99.0]}
        if not server.alive():
            raise JobError(f"the server exited during the job; log:\n{server.log_tail()}")
        host_bytes = os.stat(image).st_blocks * 512
    finally:
        server.stop()
        if os.path.exists(image):
            os.unlink(image)
    return Sample(metrics, argv, {"writes": writes, "virtual_size": virtual,
                                  "host_allocated_bytes": host_bytes, "fio_job": job})


# -- convert ----------------------------------------------------------------------------------------

def _run_convert(scenario, ctx, ep):
    p = scenario.params
    target = f"{ep.image}.{scenario.name}.out"
    if os.path.exists(target):
        os.unlink(target)
    args = ["convert", "-f", p["from"], "-O", p["to"]] + (["-c"] if p.get("compress") else [])
    args += [ep.image, target]
    if ep.server == "qemu-img":
        argv = ["qemu-img"] + args
    else:
        argv = [ctx.server_opts["blockshot"], "image"] + args
    try:
        start = time.perf_counter()
        proc = ctx.cmdlog.run(argv, f"{scenario.name} on {ep.server}", timeout=ctx.timeout + 600)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise JobError(f"convert exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        written = os.stat(target).st_blocks * 512
    finally:
        if os.path.exists(target):
            os.unlink(target)
    return Sample({MBPS.key: ctx.size / elapsed / 1e6}, argv,
                  {"elapsed_s": round(elapsed, 6), "target_allocated_bytes": written})


def _convert(name, title, image, src, dst, compress=False):
    return Scenario(name, title, (MBPS,), _run_convert, image=image, tags=("qcow2",),
                    params={"from": src, "to": dst, "compress": compress}, needs=("image-convert",),
                    baseline="blockshot-image")


QCOW2_SCENARIOS = [
    fio_nbd("qcow2-randread-4k-qd32", "qcow2: 4k random read of allocated data, queue depth 32",
            rw="randread", bs="4k", iodepth=32, metrics=(IOPS, P50, P99), tags=("qcow2",), image="qcow2"),
    Scenario("qcow2-randwrite-alloc-4k-qd32", "qcow2: 4k random writes that allocate, queue depth 32 (fresh image)",
             (IOPS, P50, P99), _run_randwrite_alloc, image="qcow2", tags=("qcow2",), tools=("fio", "qemu-img")),
    fio_nbd("qcow2-seqread-1m-qd8", "qcow2: 1M sequential read, queue depth 8",
            rw="read", bs="1M", iodepth=8, metrics=(MBPS,), tags=("qcow2",), image="qcow2"),
    fio_nbd("qcow2-seqwrite-1m-qd8", "qcow2: 1M sequential write (allocated clusters), queue depth 8",
            rw="write", bs="1M", iodepth=8, metrics=(MBPS,), tags=("qcow2",), image="qcow2"),
    _convert("convert-raw-to-qcow2", "convert raw -> qcow2 (random data)", "raw", "raw", "qcow2"),
    _convert("convert-qcow2-to-raw", "convert qcow2 -> raw (allocated image)", "qcow2", "qcow2", "raw"),
    _convert("convert-compressed", "convert -c raw -> qcow2 (compressible data)", "compressible", "raw", "qcow2",
             compress=True),
]
