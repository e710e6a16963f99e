"""Each server's private copy of the image, written the same way for all (PEERS.md "Fair setup").

An image kind makes one base image, then one full, non-reflinked copy per server, then syncs, so
that every server starts from an identically laid-out, fully allocated file in the page cache.
A new kind (qcow2, a qcow2 with a backing file, ...) is a make_base function and an entry in KINDS;
the qcow2 rows add theirs from peerslib/qcow2_rows.py.
"""

import os
from dataclasses import dataclass
from typing import Callable

from . import util


@dataclass(frozen=True)
class ImageKind:
    name: str          # also the -f format passed to servers
    suffix: str
    make_base: Callable  # (path, size_bytes, workdir, cmdlog) -> None


def make_raw_base(path, size, workdir, cmdlog):
    """head -c SIZE /dev/urandom > base: random, incompressible, fully allocated."""
    with open(path, "wb") as out:
        proc = cmdlog.run(["head", "-c", str(size), "/dev/urandom"], "make base image",
                          stdout=out, shell_text=f"head -c {size} /dev/urandom > {path}")
    if proc.returncode != 0 or os.path.getsize(path) != size:
        raise RuntimeError(f"could not write the base image {path}: {proc.stderr.strip()}")


KINDS = {
    "raw": ImageKind("raw", ".raw", make_raw_base),
}


class ImageSet:
    """Base images and per-server copies under one work directory; removes what it made."""

    def __init__(self, workdir, size, cmdlog):
        self.workdir = workdir
        self.size = size
        self.cmdlog = cmdlog
        self.created = []
        self._copies = {}

    def copies(self, kind_name, server_names):
        """Path of each server's copy of an image of this kind (made on first request)."""
        kind = KINDS[kind_name]
        missing = [s for s in server_names if (kind_name, s) not in self._copies]
        if missing:
            base = os.path.join(self.workdir, f"base{kind.suffix}")
            if not os.path.exists(base):
                util.info(f"writing base {kind.name} image ({util.format_size(self.size)}) ...")
                self.created.append(base)
                kind.make_base(base, self.size, self.workdir, self.cmdlog)
            for server in missing:
                dest = os.path.join(self.workdir, f"{server}{kind.suffix}")
                self.created.append(dest)
                proc = self.cmdlog.run(["cp", "--reflink=never", base, dest],
                                       f"copy image for {server}")
                if proc.returncode != 0:
                    raise RuntimeError(f"cp --reflink=never {base} {dest} failed: "
                                       f"{proc.stderr.strip()}")
                self._copies[(kind_name, server)] = dest
            self.cmdlog.run(["sync"], "flush image copies")
        return {s: self._copies[(kind_name, s)] for s in server_names}

    def remove(self):
        for path in reversed(self.created):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.created.clear()
        self._copies.clear()
