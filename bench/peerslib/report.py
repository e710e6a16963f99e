"""Medians, ratios and the printed tables.

Ratios are baseline/peer of the medians (Blockshot is the baseline): for throughput above 1.00x
means Blockshot is faster; for latency and RSS (lower is better) above 1.00x means Blockshot is
slower or bigger. Each ratio also comes with the median of the per-round paired ratios in the JSON,
which cancels drift that hit both servers in the same round.
"""

from . import util
from .scenarios import Metric

RSS = Metric("rss_peak_mib", "MiB", higher_is_better=False)
CPU = Metric("server_cpu_s", "s", higher_is_better=False)


def _value(sample, key):
    if key == RSS.key:
        peak = (sample.get("process") or {}).get("rss_peak_kib")
        return None if peak is None else peak / 1024.0
    if key == CPU.key:
        return (sample.get("process") or {}).get("cpu_s")
    return sample["metrics"].get(key)


def _stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": util.median(values), "min": min(values), "max": max(values),
            "n": len(values), "values": values}


def summarize(samples, rows, server_names, baseline):
    """{scenario: {"servers": {server: {metric: stats}}, "ratios": {"a/b": {metric: {...}}}}}."""
    out = {}
    for row in rows:
        metrics = list(row.metrics) + [RSS, CPU]
        per_server = {}
        for server in server_names:
            mine = [s for s in samples if s["scenario"] == row.name and s["server"] == server
                    and not s["error"]]
            if not mine:
                continue
            per_server[server] = {m.key: st for m in metrics
                                  if (st := _stats([_value(s, m.key) for s in mine])) is not None}
        ratios = {}
        base = row_baseline(row, baseline)
        if base in per_server:
            for peer in server_names:
                if peer == base or peer not in per_server:
                    continue
                ratios[f"{base}/{peer}"] = {
                    m.key: _ratio(samples, row.name, base, peer, m, per_server)
                    for m in metrics}
        out[row.name] = {"title": row.title,
                         "metrics": {m.key: {"unit": m.unit, "higher_is_better": m.higher_is_better}
                                     for m in metrics},
                         "servers": per_server, "ratios": ratios}
    return out


def row_baseline(row, baseline):
    """The server a row's ratios divide by: the row's own (daemon rows) or --baseline."""
    return getattr(row, "baseline", "") or baseline


def _ratio(samples, scenario, base, peer, metric, per_server):
    b = per_server[base].get(metric.key)
    p = per_server[peer].get(metric.key)
    of_medians = b["median"] / p["median"] if b and p and p["median"] else None
    paired = []
    rounds = sorted({s["round"] for s in samples if s["scenario"] == scenario})
    for rnd in rounds:
        pick = {s["server"]: _value(s, metric.key) for s in samples
                if s["scenario"] == scenario and s["round"] == rnd and not s["error"]}
        if pick.get(base) is not None and pick.get(peer):
            paired.append(pick[base] / pick[peer])
    return {"of_medians": of_medians, "paired_median": util.median(paired), "paired": paired}


# -- printing -----------------------------------------------------------------------------------

def _cell(stats):
    if not stats:
        return "-"
    med = util.format_number(stats["median"])
    if stats["n"] == 1:
        return med
    return f"{med} [{util.format_number(stats['min'])}..{util.format_number(stats['max'])}]"


def _table(header, rows, left=2):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render(summary, rows, server_names, baseline, missing, rounds):
    """Headline table with ratio columns, then latency (where measured), then server RSS."""
    ratio_cols = []
    for row in rows:
        base = row_baseline(row, baseline)
        if base in server_names:
            ratio_cols += [f"{base}/{p}" for p in server_names if p != base and f"{base}/{p}" not in ratio_cols]
    # A pair no row measured (a tool peer beside a server, say) gets no column; an unmeasured server keeps its.
    ratio_cols = [c for c in ratio_cols
                  if c.split("/", 1)[1] in missing or any(c in summary[r.name]["ratios"] for r in rows)]
    note = "median [min..max] over %d round%s" % (rounds, "" if rounds == 1 else "s")

    def server_cell(row, server, key):
        if server in missing:
            return "not run"
        return _cell(summary[row.name]["servers"].get(server, {}).get(key))

    def ratio_cell(row, col, key):
        r = summary[row.name]["ratios"].get(col, {}).get(key)
        return util.format_ratio(r["of_medians"]) if r else "-"

    out = []
    body = []
    for row in rows:
        key = row.headline.key
        better = "higher" if row.headline.higher_is_better else "lower"
        body.append([row.name, row.headline.unit, better]
                    + [server_cell(row, s, key) for s in server_names]
                    + [ratio_cell(row, c, key) for c in ratio_cols])
    out.append(f"Headline figures ({note})")
    out.append(_table(["scenario", "unit", "better"] + server_names + ratio_cols, body, left=3))

    lat_rows = [r for r in rows if any(m.key.startswith("clat_") for m in r.metrics)]
    if lat_rows:
        body = []
        for row in lat_rows:
            for m in row.metrics:
                if m.key.startswith("clat_"):
                    body.append([row.name, m.key.replace("clat_", "").replace("_us", "") + " us"]
                                + [server_cell(row, s, m.key) for s in server_names]
                                + [ratio_cell(row, c, m.key) for c in ratio_cols])
        out.append("")
        out.append(f"Completion latency from fio clat ({note}; lower is better)")
        out.append(_table(["scenario", "pct"] + server_names + ratio_cols, body))

    other = [(row, m) for row in rows for m in row.metrics[1:] if not m.key.startswith("clat_")]
    if other:
        body = [[row.name, m.key, m.unit, "higher" if m.higher_is_better else "lower"]
                + [server_cell(row, s, m.key) for s in server_names] for row, m in other]
        out.append("")
        out.append(f"Other figures of the rows ({note})")
        out.append(_table(["scenario", "figure", "unit", "better"] + server_names, body, left=4))

    body = [[row.name, RSS.unit] + [server_cell(row, s, RSS.key) for s in server_names]
            + [ratio_cell(row, c, RSS.key) for c in ratio_cols] for row in rows]
    out.append("")
    out.append(f"Server RSS, peak VmRSS during the job ({note}; lower is better)")
    out.append(_table(["scenario", "unit"] + server_names + ratio_cols, body))
    return "\n".join(out)
