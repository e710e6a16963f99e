"""Side-by-side peer benchmark for Blockshot (see bench/README.md).

Layout:
  util.py       sizes, medians, number formatting, the log of every command run
  procs.py      server processes: start, readiness, RSS/CPU sampling, teardown
  servers.py    the servers under test (Blockshot and its peers), as data
  images.py     how each server's private copy of the image is made
  fio.py        fio nbd-engine command lines and result parsing (IOPS, MB/s, latency percentiles)
  scenarios.py  the benchmark rows, as data
  daemon_rows.py  rows that need the Blockshot daemon (filter swaps, suspend stalls, mirror vs qemu-img)
  cbt_rows.py   change-tracking overhead rows (a tracked and an untracked device of one daemon)
  control.py    a minimal client of the daemon's control socket
  runner.py     the measurement loop (rounds, rotation, per-job sampling)
  report.py     medians, ratios, tables and the JSON document
  machine.py    machine, tool and git facts recorded with every run
  cli.py        option parsing and the top-level flow
"""
