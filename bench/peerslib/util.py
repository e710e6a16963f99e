"""Small helpers: sizes, medians, number formatting, and the log of every command run."""

import datetime
import re
import shlex
import statistics
import subprocess
import sys
import time

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text):
    """'1G', '512M', '1GiB', '4096' -> bytes (binary units, as head -c and fio read them)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 1G, 256M, 1073741824)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).upper()]


def format_size(nbytes):
    """Bytes -> the shortest exact binary form: 1073741824 -> '1G'."""
    for unit in ("T", "G", "M", "K"):
        scale = _SIZE_UNITS[unit]
        if nbytes % scale == 0 and nbytes >= scale:
            return f"{nbytes // scale}{unit}"
    return str(nbytes)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def utc_stamp(moment=None):
    """A timestamp safe for file names: 20250101T120000Z."""
    return (moment or utc_now()).strftime("%Y%m%dT%H%M%SZ")


def format_number(value):
    """At least three significant figures, thousands separated.

    41234.5 -> '41,234', 3.456 -> '3.46', 0.01234 -> '0.0123'.
    """
    if value is None:
        return "-"
    if value == 0:
        return "0"
    digits = max(0, 2 - int(f"{abs(value):e}".split("e")[1]))
    rounded = round(value, digits)
    return f"{rounded:,.{digits}f}"


def format_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def warn(message):
    print(f"peers: warning: {message}", file=sys.stderr, flush=True)


def loud(message):
    """A message that must not be missed (a server skipped, a run invalid)."""
    bar = "!" * 78
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr, flush=True)


def info(message):
    print(f"peers: {message}", flush=True)


def shell_join(argv):
    return " ".join(shlex.quote(str(a)) for a in argv)


class CommandLog:
    """Every external command the run executes, in order, for the JSON document."""

    def __init__(self):
        self.entries = []

    def note(self, argv, purpose, cwd=None, shell_text=None):
        """Record a command started elsewhere (a server); returns its entry to fill in later."""
        entry = {
            "index": len(self.entries),
            "purpose": purpose,
            "command": shell_text or shell_join(argv),
            "cwd": str(cwd) if cwd else None,
            "started_utc": utc_now().isoformat(timespec="milliseconds"),
        }
        self.entries.append(entry)
        return entry

    def run(self, argv, purpose, *, cwd=None, timeout=None, stdout=subprocess.PIPE,
            shell_text=None, env=None):
        """Run to completion, capturing text output; never raises on a non-zero exit."""
        entry = self.note(argv, purpose, cwd, shell_text)
        start = time.perf_counter()
        try:
            proc = subprocess.run([str(a) for a in argv], cwd=cwd, timeout=timeout, env=env,
                                  stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                                  encoding="utf-8", errors="replace")
        except OSError as exc:
            entry["elapsed_s"] = round(time.perf_counter() - start, 6)
            entry["returncode"] = None
            entry["error"] = str(exc)
            return subprocess.CompletedProcess(argv, 127, "", f"cannot run {argv[0]}: {exc}")
        except subprocess.TimeoutExpired as exc:
            entry["elapsed_s"] = round(time.perf_counter() - start, 6)
            entry["returncode"] = None
            entry["error"] = f"timed out after {timeout} s"
            stderr = _text(exc.stderr) + f"\n(timed out after {timeout} s)"
            return subprocess.CompletedProcess(exc.cmd, -1, _text(exc.stdout), stderr)
        entry["elapsed_s"] = round(time.perf_counter() - start, 6)
        entry["returncode"] = proc.returncode
        return proc


def _text(data):
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def tail(text, lines=15):
    rows = (text or "").rstrip().splitlines()
    return "\n".join(rows[-lines:])
