#!/usr/bin/env python3
"""Measures and reports for bench/run (standard library only, so it runs before Scrapy is
installed and without the sqlite3 command).

    report.py scenario NAME key=value ...       a scenario's parameters, as a JSON line
    report.py crawl SCENARIO CRAWLER DIR        one crawl's figures from DIR, as a JSON line
    report.py limit SCENARIO DIR                the bare fetch and parse figures, as a JSON line
    report.py pgcpu PGDATA                      CPU seconds the PostgreSQL server has used so far
    report.py cluster DIR NODES                 one cluster run's figures from DIR, as a JSON line
    report.py render RESULTS [--markdown FILE]  the tables (and a RESULTS.md section)

A crawl's DIR holds `time` (/usr/bin/time -v), `site.err` (bench-site's stderr, with its CPU
line), `crawl.db`, and optionally `stats.json` (Scrapy's stats) and `requests.log`
(bench-site --log).

A cluster run's DIR holds `node-I.time` per node, `site.err`, `wall` (start and end, in
seconds), `pgcpu` (the server's CPU seconds before and after), `cpustat` (/proc/stat's cpu
line before and after), `samples` (the sampler's NOTICE lines: `sample LOCK_WAITING ACTIVE
EVENTS`, EVENTS the lock waited for by each waiting backend, comma-separated, or `-`)
and `counts` (pages, 2xx pages, links, `|`-separated, from psql).
"""

import argparse
import json
import os
import re
import sqlite3
import sys
from datetime import datetime


def fail(msg):
    sys.exit(f"report.py: {msg}")


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


# ---------------------------------------------------------------- measuring


def parse_time_v(text):
    """The figures we use from GNU time's -v report."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().rpartition(": ")
        if sep:
            fields[key] = value.strip()
    try:
        clock = [float(x) for x in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
        wall = 0.0
        for part in clock:
            wall = wall * 60 + part
        return {
            "wall_s": wall,
            "user_s": float(fields["User time (seconds)"]),
            "sys_s": float(fields["System time (seconds)"]),
            "rss_mb": int(fields["Maximum resident set size (kbytes)"]) / 1024,
            "exit": int(fields.get("Exit status", "0")),
        }
    except (KeyError, ValueError) as e:
        fail(f"unreadable /usr/bin/time -v output ({e})")


SITE_CPU = re.compile(r"bench-site: served (\d+) requests, CPU user ([\d.?]+) s sys ([\d.?]+) s")


def parse_site(text):
    m = SITE_CPU.search(text)
    if not m:
        return {"site_requests": None, "site_cpu_s": None}
    user, sys_ = (float(x) if x != "?" else 0.0 for x in m.group(2, 3))
    return {"site_requests": int(m.group(1)), "site_cpu_s": user + sys_}


def machine_busy_s(path):
    """CPU seconds the whole machine spent busy between the two /proc/stat lines in `path`."""
    lines = [line.split() for line in read(path).splitlines() if line.startswith("cpu ")]
    if len(lines) != 2:
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle, iowait and steal.
    busy = [sum(int(x) for i, x in enumerate(fields[1:9]) if i not in (3, 4, 7)) for fields in lines]
    return (busy[1] - busy[0]) / os.sysconf("SC_CLK_TCK")


def window_rate(times, oks, lo, hi):
    """Pages per second over pages lo..hi (by fetch time), and the share of them that were 2xx."""
    span = times[hi] - times[lo]
    rate = (hi - lo) / span if span > 0 else None
    return rate, sum(oks[lo : hi + 1]) / (hi - lo + 1)


def db_figures(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    out = {
        "pages": db.execute("SELECT count(*) FROM pages").fetchone()[0],
        "pages_2xx": db.execute("SELECT count(*) FROM pages WHERE status BETWEEN 200 AND 299").fetchone()[0],
        "links": db.execute("SELECT count(*) FROM links").fetchone()[0],
        "max_depth": db.execute("SELECT max(depth) FROM pages").fetchone()[0],
        "frontier_rows": db.execute("SELECT count(*) FROM frontier").fetchone()[0] if "frontier" in tables else None,
        # Pages per (host, depth), from pipecrawl's own tables: the shape of the site, which
        # bounds how fast any breadth-first crawler can go (see depth_bound).
        "depths": [list(r) for r in db.execute(
            "SELECT f.host, p.depth, count(*) FROM pages p JOIN frontier f ON f.id = p.id GROUP BY 1, 2"
        )] if "frontier" in tables else None,
    }
    rows = db.execute(
        "SELECT julianday(fetched_at), status BETWEEN 200 AND 299 FROM pages ORDER BY fetched_at"
    ).fetchall()
    db.close()
    times = [r[0] * 86400.0 for r in rows]
    oks = [1 if r[1] else 0 for r in rows]
    n = len(times)
    if n >= 20:
        k = n // 10
        out["span_s"] = times[-1] - times[0]
        out["first10_rate"], out["first10_2xx"] = window_rate(times, oks, 0, k)
        out["last10_rate"], out["last10_2xx"] = window_rate(times, oks, n - 1 - k, n - 1)
        # Every tenth, so a reader sees whether first ÷ last is a trend or one slow tenth.
        out["tenth_rates"] = [window_rate(times, oks, i * k, min((i + 1) * k, n - 1))[0] for i in range(10)]
    return out


def depth_bound(depths, workers, per_host, latency):
    """The least time any polite breadth-first crawler needs for a site of this shape.

    robots.txt takes one round trip before a host's first page, and a page at depth d can
    be asked for only after its parent arrived: no request for a page at depth >= d goes
    out before (d + 1) round trips. From then on, at most `workers` requests are in flight
    (at most `per_host` on one host), each one round trip long. So for every d the crawl
    needs at least (d + 1 + ceil(pages at depth >= d / concurrency)) round trips, for all
    hosts together and for each host alone; the bound is the largest of these.
    """
    def rounds(counts, conc):
        worst = 0
        for d in sorted(counts):
            rest = sum(n for k, n in counts.items() if k >= d)
            worst = max(worst, d + 1 + -(-rest // conc))
        return worst

    everything, hosts = {}, {}
    for host, depth, n in depths:
        everything[depth] = everything.get(depth, 0) + n
        hosts.setdefault(host, {})[depth] = n
    worst = rounds(everything, workers)
    for counts in hosts.values():
        worst = max(worst, rounds(counts, per_host))
    return worst * latency


def request_log_span(path):
    """Seconds from the first to the last response bench-site logged."""
    stamps = [int(line.split(" ", 1)[0]) for line in read(path).splitlines() if line.strip()]
    return (max(stamps) - min(stamps)) / 1e6 if stamps else None


def cmd_crawl(args):
    d = args.dir
    rec = {"kind": "crawl", "scenario": args.scenario, "crawler": args.crawler, "label": args.label or args.crawler}
    rec.update(parse_time_v(read(os.path.join(d, "time"))))
    rec.update(parse_site(read(os.path.join(d, "site.err"))))
    rec.update(db_figures(os.path.join(d, "crawl.db")))
    cpustat = os.path.join(d, "cpustat")
    busy = machine_busy_s(cpustat) if os.path.exists(cpustat) else None
    if busy is not None:
        # Negative only by rounding: the site's CPU includes its start before the crawl.
        rec["other_cpu_s"] = max(0.0, busy - rec["user_s"] - rec["sys_s"] - (rec["site_cpu_s"] or 0))
    stats_path = os.path.join(d, "stats.json")
    if os.path.exists(stats_path):
        stats = json.loads(read(stats_path))
        # Scrapy's frontier: every request the scheduler accepted (the dupefilter passed).
        rec["frontier_rows"] = stats.get("scheduler/enqueued")
        rec["finish_reason"] = stats.get("finish_reason")
    log_path = os.path.join(d, "requests.log")
    if os.path.exists(log_path):
        rec["request_span_s"] = request_log_span(log_path)
    for kv in args.set or []:
        key, _, value = kv.partition("=")
        rec[key] = value
    print(json.dumps(rec))


LIMIT_LINE = re.compile(r"^(limit-\w+): (.*)$", re.M)


def cmd_limit(args):
    rec = {"kind": "limit", "scenario": args.scenario}
    for name in ("limit-fetch", "limit-parse"):
        text = read(os.path.join(args.dir, f"{name}.out"))
        m = LIMIT_LINE.search(text)
        if not m:
            fail(f"no report line in {name}.out")
        fields = dict(kv.split("=", 1) for kv in m.group(2).split())
        short = name.split("-")[1]
        rec[f"{short}_pages"] = int(fields["pages"])
        rec[f"{short}_errors"] = int(fields["errors"])
        rec[f"{short}_cpu_s"] = float(fields["user_s"]) + float(fields["sys_s"])
        rec[f"{short}_wall_s"] = float(fields["wall_s"])
    rec.update(parse_site(read(os.path.join(args.dir, "site.err"))))
    print(json.dumps(rec))


def proc_cpu_ticks(pid, children_too):
    """utime + stime of a process (and with `children_too`, of its children it has reaped)."""
    try:
        stat = read(f"/proc/{pid}/stat")
    except OSError:
        return 0, None
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is /proc/PID/stat's 3rd field (state); utime is its 14th.
    ticks = int(fields[11]) + int(fields[12])
    if children_too:
        ticks += int(fields[13]) + int(fields[14])
    return ticks, int(fields[1])


def cmd_pgcpu(args):
    """The postmaster's CPU, what it collected from backends that ended (cutime, cstime),
    and its live children's: the whole server's CPU so far."""
    pid = int(read(os.path.join(args.pgdata, "postmaster.pid")).split()[0])
    total, _ = proc_cpu_ticks(pid, True)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != pid:
            ticks, ppid = proc_cpu_ticks(entry, True)
            if ppid == pid:
                total += ticks
    print(f"{total / os.sysconf('SC_CLK_TCK'):.2f}")


SAMPLE = re.compile(r"sample (\d+) (\d+) (\S+)")


def cmd_cluster(args):
    d, n = args.dir, args.nodes
    rec = {"kind": "cluster", "scenario": "cluster", "nodes": n}
    times = [parse_time_v(read(os.path.join(d, f"node-{i}.time"))) for i in range(1, n + 1)]
    rec["node_cpu_s"] = sum(t["user_s"] + t["sys_s"] for t in times)
    rec["node_rss_mb"] = max(t["rss_mb"] for t in times)
    rec["exit"] = max(t["exit"] for t in times)
    start, end = (float(x) for x in read(os.path.join(d, "wall")).split())
    rec["wall_s"] = end - start
    before, after = (float(x) for x in read(os.path.join(d, "pgcpu")).split())
    rec["pg_cpu_s"] = after - before
    rec.update(parse_site(read(os.path.join(d, "site.err"))))
    pages, ok, links = (int(x) for x in read(os.path.join(d, "counts")).strip().split("|"))
    rec.update(pages=pages, pages_2xx=ok, links=links)
    found = SAMPLE.findall(read(os.path.join(d, "samples")))
    samples = [(int(a), int(b)) for a, b, _ in found]
    rec["samples"] = len(samples)
    events = {}
    for *_, waited in found:
        for event in waited.split(","):
            if event != "-":
                events[event] = events.get(event, 0) + 1
    rec["lock_events"] = events
    if samples:
        rec["lock_wait_mean"] = sum(a for a, _ in samples) / len(samples)
        rec["lock_wait_max"] = max(a for a, _ in samples)
        rec["lock_wait_share"] = sum(1 for a, _ in samples if a) / len(samples)
        rec["active_mean"] = sum(b for _, b in samples) / len(samples)
    busy = machine_busy_s(os.path.join(d, "cpustat"))
    if busy is not None:
        rec["machine_busy_s"] = busy
        rec["other_cpu_s"] = max(0.0, busy - rec["node_cpu_s"] - rec["pg_cpu_s"] - (rec["site_cpu_s"] or 0))
    print(json.dumps(rec))


def cmd_scenario(args):
    rec = {"kind": "scenario", "name": args.name}
    for kv in args.params:
        key, _, value = kv.partition("=")
        try:
            rec[key] = int(value)
        except ValueError:
            rec[key] = value
    print(json.dumps(rec))


# ---------------------------------------------------------------- reporting


def fmt_int(x):
    return "—" if x is None else f"{x:,.0f}"


def fmt(x, digits=1):
    return "—" if x is None else f"{x:,.{digits}f}"


def pct(x):
    return "—" if x is None else f"{100 * x:.0f}%"


def ratio(a, b):
    return a / b if a is not None and b else None


def per_page_ms(c):
    return 1000 * (c["user_s"] + c["sys_s"]) / c["pages"] if c["pages"] else None


class Table:
    def __init__(self, header, align=None):
        self.header = header
        self.rows = []
        self.align = align or ["l"] + ["r"] * (len(header) - 1)

    def add(self, *cells):
        self.rows.append([str(c) for c in cells])

    def text(self):
        cols = list(zip(self.header, *self.rows))
        widths = [max(len(c) for c in col) for col in cols]
        lines = []
        for row in [self.header] + self.rows:
            cells = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, self.align)]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    def markdown(self):
        sep = ["---" if a == "l" else "---:" for a in self.align]
        return "\n".join("| " + " | ".join(r) + " |" for r in [self.header, sep] + self.rows)


class Report:
    """Collects paragraphs and tables, then prints them as text or markdown."""

    def __init__(self):
        self.parts = []

    def heading(self, s):
        self.parts.append(("h", s))

    def para(self, s):
        self.parts.append(("p", s))

    def table(self, t):
        self.parts.append(("t", t))

    def text(self):
        out = []
        for kind, x in self.parts:
            if kind == "h":
                out.append(f"\n== {x} ==")
            elif kind == "p":
                out.append(x)
            else:
                out.append(x.text())
        return "\n".join(out).strip() + "\n"

    def markdown(self, level="###"):
        out = []
        for kind, x in self.parts:
            if kind == "h":
                out.append(f"\n{level} {x}\n")
            elif kind == "p":
                out.append(x + "\n")
            else:
                out.append(x.markdown() + "\n")
        return "\n".join(out).strip() + "\n"


CRAWL_HEADER = ["crawler", "pages", "2xx", "links", "wall s", "pages/s", "links/s", "CPU s",
                "CPU ms/page", "peak RSS MB", "site CPU s", "other CPU s"]


def crawl_row(t, c):
    pps = c["pages"] / c["wall_s"] if c["wall_s"] else None
    lps = c["links"] / c["wall_s"] if c["wall_s"] else None
    t.add(c["label"], fmt_int(c["pages"]), fmt_int(c["pages_2xx"]), fmt_int(c["links"]), fmt(c["wall_s"], 2),
          fmt_int(pps), fmt_int(lps), fmt(c["user_s"] + c["sys_s"], 2), fmt(per_page_ms(c), 3),
          fmt(c["rss_mb"]), fmt(c["site_cpu_s"], 2), fmt(c.get("other_cpu_s"), 1))


def rate(c):
    return c["pages"] / c["wall_s"] if c and c["wall_s"] else None


def compare(rep, p, s):
    """The ratio line under a scenario's table: pipecrawl over Scrapy."""
    if not (p and s):
        return {}
    r = {
        "pages_s": ratio(rate(p), rate(s)),
        "cpu_page": ratio(per_page_ms(p), per_page_ms(s)),
        "rss": ratio(p["rss_mb"], s["rss_mb"]),
    }
    rep.para(f"pipecrawl ÷ Scrapy: pages/s {fmt(r['pages_s'], 2)}×, CPU per page {fmt(r['cpu_page'], 3)}×, "
             f"peak RSS {fmt(r['rss'], 2)}×")
    return r


def subset_note(rep, p, sc, knob):
    if p and sc and sc["pages"] < p["pages"] * 0.9:
        whole = p["pages"] / rate(sc) / 60
        rep.para(f"Scrapy crawled the same site but stopped at {sc['pages']:,} pages ({knob}): the "
                 f"{p['pages']:,} would take it about {whole:.0f} min at its rate here, so its rates and per-page "
                 "figures are compared, and its peak RSS and frontier are those of the shorter crawl.")


def check(holds):
    return "—" if holds is None else ("holds" if holds else "misses")


def render(records, cores):
    scen = {r["name"]: r for r in records if r["kind"] == "scenario"}
    crawls = {}
    for r in records:
        if r["kind"] == "crawl":
            crawls[(r["scenario"], r["crawler"])] = r
    limits = {r["scenario"]: r for r in records if r["kind"] == "limit"}
    rep = Report()
    targets = Table(["target", "measured", "verdict"], ["l", "r", "l"])
    notes = []

    def crawl_section(name, heading, knob=None):
        """Heading, both crawlers' rows and the ratios; returns the two crawls and the ratios."""
        p, sc = crawls.get((name, "pipecrawl")), crawls.get((name, "scrapy"))
        rep.heading(heading)
        t = Table(CRAWL_HEADER)
        for c in (p, sc):
            if c:
                crawl_row(t, c)
        rep.table(t)
        if knob:
            subset_note(rep, p, sc, knob)
        return p, sc, compare(rep, p, sc)

    if "throughput" in scen:
        s = scen["throughput"]
        p, sc, r = crawl_section("throughput", f"throughput: {s['pages']:,} pages on 1 host, no latency; fetch.workers "
                                 f"{s['workers']}, per_host_concurrency {s['per_host']}, delay 0", "SCRAPY_PAGES")
        lim = limits.get("throughput")
        ideal_frac = None
        if lim and p:
            fetch_ms = 1000 * lim["fetch_cpu_s"] / lim["fetch_pages"]
            parse_ms = 1000 * lim["parse_cpu_s"] / lim["parse_pages"]
            ideal_s = p["pages"] * (fetch_ms + parse_ms) / 1000 / cores
            ideal_frac = ideal_s / p["wall_s"]
            lt = Table(["the limit (same pages)", "pages", "CPU s", "CPU ms/page"])
            lt.add("bare fetch (reqwest, body read and dropped)", fmt_int(lim["fetch_pages"]),
                   fmt(lim["fetch_cpu_s"], 2), fmt(fetch_ms, 4))
            lt.add("bare parse (scraper: title + hrefs, 1 thread)", fmt_int(lim["parse_pages"]),
                   fmt(lim["parse_cpu_s"], 2), fmt(parse_ms, 4))
            rep.table(lt)
            rep.para(f"ideal pipelined time for {p['pages']:,} pages = (fetch + parse CPU) / {cores} cores = "
                     f"{ideal_s:.2f} s ({p['pages'] / ideal_s:,.0f} pages/s); pipecrawl took {p['wall_s']:.2f} s: "
                     f"{pct(ideal_frac)} of the ideal.")
        if p:
            targets.add("throughput: ≥ 20× Scrapy's pages/s", f"{fmt(r.get('pages_s'), 1)}×",
                        check(r.get("pages_s") and r["pages_s"] >= 20))
            targets.add("throughput: ≥ 70% of the ideal", pct(ideal_frac), check(ideal_frac and ideal_frac >= 0.7))
            targets.add("throughput: peak RSS ≤ 1/4 of Scrapy's", f"{fmt(r.get('rss'), 2)}×",
                        check(r.get("rss") and r["rss"] <= 0.25))

    if "latency" in scen:
        s = scen["latency"]
        lat = s["latency_ms"] / 1000
        conc = min(s["workers"], s["hosts"] * s["per_host"])
        ideal = conc / lat
        p, sc, _ = crawl_section("latency", f"latency-bound: {s['pages']:,} pages on {s['hosts']} hosts, "
                                 f"{s['latency_ms']} ms per response; fetch.workers {s['workers']}, "
                                 f"per_host_concurrency {s['per_host']}")
        t = Table(["crawler", "pages/s", "% of ideal", "pages/s over requests", "% of ideal"])
        for c in (p, sc):
            if c:
                busy = c["pages"] / c["request_span_s"] if c.get("request_span_s") else None
                t.add(c["label"], fmt_int(rate(c)), pct(ratio(rate(c), ideal)), fmt_int(busy), pct(ratio(busy, ideal)))
        rep.para(f"ideal: concurrency {conc:,} / latency {lat:.3f} s = {ideal:,.0f} pages/s. \"Over requests\" "
                 "counts from the site's first response to its last (process start-up and shutdown left out).")
        rep.table(t)
        frac = ratio(rate(p), ideal) if p else None
        bound_frac = None
        if p and p.get("depths"):
            bound_s = depth_bound(p["depths"], s["workers"], s["per_host"], lat)
            bound = p["pages"] / bound_s
            bound_frac = bound / ideal
            span = p.get("request_span_s")
            levels = ", ".join(f"{n:,} at depth {d}" for d, n in sorted(
                {d: sum(n for _, k, n in p["depths"] if k == d) for _, d, _ in p["depths"]}.items()))
            rep.para(f"the site's bound: its pages lie {levels}. robots.txt comes first and a page can be asked "
                     f"for only once the page linking to it arrived, so no polite breadth-first crawler can take "
                     f"less than {bound_s:.2f} s ({bound_s / lat:.0f} round trips): {bound:,.0f} pages/s, "
                     f"{pct(bound_frac)} of the ideal. pipecrawl ran at {pct(ratio(rate(p), bound))} of that bound "
                     f"over its wall time; from the first response to the last it took {fmt(span, 2)} s, where the "
                     f"bound allows {bound_s - lat:.2f} s ({pct(ratio(bound_s - lat, span))}).")
        verdict = check(frac and frac >= 0.8)
        if bound_frac is not None and bound_frac < 0.8 and not (frac and frac >= 0.8):
            verdict += f" (cannot hold on this site: its link depth bounds any polite crawler at {pct(bound_frac)})"
        targets.add("latency-bound: ≥ 80% of the ideal pages/s", pct(frac), verdict)

    if "small" in scen:
        s = scen["small"]
        lat = s["latency_ms"] / 1000
        p, sc = crawls.get(("small", "pipecrawl")), crawls.get(("small", "scrapy"))
        rep.heading(f"small site: {s['pages']} pages on {s['hosts']} hosts ({s['pages'] // s['hosts']} per host), "
                    f"{s['latency_ms']} ms per response, same concurrency")
        t = Table(["crawler", "pages", "wall s", "round trips (wall / latency)", "round trips (site: first to last)",
                   "page depth"])
        for c in (p, sc):
            if c:
                span_rt = (c["request_span_s"] + lat) / lat if c.get("request_span_s") is not None else None
                t.add(c["label"], fmt_int(c["pages"]), fmt(c["wall_s"], 2), fmt(c["wall_s"] / lat, 1),
                      fmt(span_rt, 1), fmt_int(c["max_depth"]))
        rep.table(t)
        if p and p["max_depth"] is not None:
            rep.para(f"the site's pages lie up to {p['max_depth']} links from a seed, so a breadth-first crawl needs "
                     f"at least {p['max_depth'] + 2} round trips: robots.txt, then one per level.")
        rt = p["wall_s"] / lat if p else None
        chain = p["max_depth"] + 2 if p and p["max_depth"] is not None else None
        verdict = check(rt and rt <= 2)
        if chain and chain > 2 and verdict != "holds":
            verdict += f" (cannot hold here: robots.txt and {chain - 1} link levels are {chain} round trips)"
        targets.add("latency-bound: the 150-page site in ≤ 2 round trips", fmt(rt, 1), verdict)
        over = rt - chain if rt is not None and chain else None
        targets.add("latency-bound: the 150-page site in ≤ 2 round trips beyond robots.txt and one per level",
                    fmt(over, 1), check(over is not None and over <= 2))

    if "scale" in scen:
        s = scen["scale"]
        p, sc, _ = crawl_section("scale", f"scale: {s['pages']:,} pages (scope.max_pages) of a {s['site_pages']:,}-page "
                                 f"site on 1 host; fetch.workers {s['workers']}, per_host_concurrency {s['workers']}",
                                 "SCALE_SCRAPY_PAGES")
        t = Table(["crawler", "frontier rows", "peak RSS MB", "first 10% pages/s", "(2xx)", "last 10% pages/s",
                   "(2xx)", "last ÷ first"])
        for c in (p, sc):
            if c:
                t.add(c["label"], fmt_int(c["frontier_rows"]), fmt(c["rss_mb"]), fmt_int(c.get("first10_rate")),
                      pct(c.get("first10_2xx")), fmt_int(c.get("last10_rate")), pct(c.get("last10_2xx")),
                      pct(ratio(c.get("last10_rate"), c.get("first10_rate"))))
        rep.para("frontier rows: pipecrawl's `frontier` table; for Scrapy, requests its scheduler took in "
                 "(scheduler/enqueued). First and last 10% are by pages.fetched_at in each result database.")
        rep.table(t)
        for c in (p, sc):
            if c and c.get("tenth_rates"):
                rep.para(f"{c['label']} pages/s by tenth of its pages: "
                         + " · ".join(fmt_int(r) for r in c["tenth_rates"]))
        if s.get("scrapy_skipped"):
            rep.para(f"Scrapy skipped: {s['scrapy_skipped']}")
        if p:
            steady = ratio(p.get("last10_rate"), p.get("first10_rate"))
            targets.add("scale: peak RSS ≤ 256 MB", f"{fmt(p['rss_mb'])} MB", check(p["rss_mb"] <= 256))
            targets.add("scale: ≥ 1,000,000 frontier rows", fmt_int(p["frontier_rows"]),
                        check(p["frontier_rows"] is not None and p["frontier_rows"] >= 1_000_000))
            targets.add("scale: last 10% pages/s ≥ 80% of first 10%", pct(steady), check(steady and steady >= 0.8))

    if "cluster" in scen:
        s = scen["cluster"]
        runs = sorted((r for r in records if r["kind"] == "cluster"), key=lambda r: r["nodes"])
        lat = s["latency_ms"] / 1000
        rep.heading(f"cluster: {s['pages']:,} pages on {s['hosts']} hosts, {s['latency_ms']} ms per response, "
                    f"crawled by {', '.join(str(r['nodes']) for r in runs)} pipecrawl nodes on one PostgreSQL, "
                    f"all on this machine; per node fetch.workers {s['workers']}, per_host_concurrency "
                    f"{s['per_host']}")
        t = Table(["nodes", "pages", "wall s", "pages/s", "speed-up", "ideal pages/s", "node CPU s", "ms/page",
                   "PostgreSQL CPU s", "ms/page", "site CPU s", "CPU busy", "lock waits (mean)", "(max)",
                   "(% of samples)", "active backends"])
        base = rate(runs[0]) if runs else None
        for r in runs:
            ideal = r["nodes"] * s["workers"] / lat
            t.add(fmt_int(r["nodes"]), fmt_int(r["pages"]), fmt(r["wall_s"], 2), fmt_int(rate(r)),
                  f"{fmt(ratio(rate(r), base), 2)}×", fmt_int(ideal), fmt(r["node_cpu_s"], 2),
                  fmt(ratio(1000 * r["node_cpu_s"], r["pages"]), 2), fmt(r["pg_cpu_s"], 2),
                  fmt(ratio(1000 * r["pg_cpu_s"], r["pages"]), 2), fmt(r["site_cpu_s"], 2),
                  pct(ratio(r.get("machine_busy_s"), r["wall_s"] * cores)), fmt(r.get("lock_wait_mean"), 2),
                  fmt_int(r.get("lock_wait_max")), pct(r.get("lock_wait_share")), fmt(r.get("active_mean"), 1))
        rep.table(t)
        rep.para(f"ideal: nodes × fetch.workers / latency. CPU busy: the whole machine's busy time over wall × "
                 f"{cores} cores (from /proc/stat). PostgreSQL CPU: its processes' user + system time (/proc), "
                 "durability off (fsync, synchronous_commit), so the disk plays no part. Lock waits: backends of the "
                 "crawl's database waiting on a heavyweight lock (pg_stat_activity wait_event_type = 'Lock'), "
                 f"sampled every 100 ms; active backends likewise.")
        waits = "; ".join(f"{nodes(r['nodes'])}: {lock_kinds(r['lock_events'])}" for r in runs if "lock_events" in r)
        if waits:
            rep.para(f"locks waited for (wait_event, share of waiting samples): {waits}. transactionid: a "
                     "transaction waits for another (a node's writer or lease renewal) to commit a row both write, "
                     "such as the same new URL in `frontier` or the same link target's counts in `inlinks` and "
                     "`anchors` in two nodes' batches; tuple: queued "
                     "behind such a waiter; advisory: the migration lock at start-up.")
        rep.para(cluster_verdict(runs, s, cores))
        if len(runs) >= 2 and runs[0]["nodes"] == 1:
            step = runs[1]
            gain = ratio(rate(step), base)
            targets.add(f"cluster: {step['nodes']} nodes ≥ 80% of {step['nodes']}× one node's pages/s",
                        f"{fmt(gain, 2)}×", check(gain and gain >= 0.8 * step["nodes"]))

    for c in list(crawls.values()) + [r for r in records if r["kind"] == "cluster"]:
        if c.get("other_cpu_s") is not None and c["other_cpu_s"] > 0.1 * c["wall_s"]:
            notes.append(f"{c['scenario']}/{c.get('label') or nodes(c.get('nodes'))}: other processes used {c['other_cpu_s']:.1f} CPU s during the "
                         f"crawl ({c['other_cpu_s'] / c['wall_s']:.0%} of a core): its figures were disturbed.")
        if c.get("exit"):
            notes.append(f"{c['scenario']}/{c.get('label') or nodes(c.get('nodes'))} exited with status {c['exit']}.")
        if c.get("finish_reason") not in (None, "finished", "closespider_pagecount"):
            notes.append(f"{c['scenario']}/{c['label']}: Scrapy finished with {c['finish_reason']}.")
    if targets.rows:
        rep.heading("targets")
        rep.table(targets)
    for n in notes:
        rep.para("note: " + n)
    return rep


def nodes(n):
    return f"{n} node" if n == 1 else f"{n} nodes"


def lock_kinds(events):
    """The locks waited for, most sampled first, each with its share of the waits."""
    total = sum(events.values())
    return ", ".join(f"{e} {pct(k / total)}" for e, k in sorted(events.items(), key=lambda x: -x[1])) or "none"


def cluster_verdict(runs, s, cores):
    """Where the cluster's pages/s stops growing near-linearly with nodes, and what the figures say
    held it back."""
    if len(runs) < 2:
        return "one node count only: nothing to compare."
    lat = s["latency_ms"] / 1000
    for prev, cur in zip(runs, runs[1:]):
        gain, more = ratio(rate(cur), rate(prev)), cur["nodes"] / prev["nodes"]
        if gain is not None and gain < 0.8 * more:
            break
    else:
        last = runs[-1]
        return (f"pages/s grew near-linearly up to {last['nodes']} nodes ({fmt(ratio(rate(last), rate(runs[0])), 2)}× "
                f"one node's): still latency-bound, at {pct(ratio(rate(last), last['nodes'] * s['workers'] / lat))} of "
                f"the ideal, CPU {pct(ratio(last.get('machine_busy_s'), last['wall_s'] * cores))} busy.")
    busy = ratio(cur.get("machine_busy_s"), cur["wall_s"] * cores)
    pg_cores = ratio(cur["pg_cpu_s"], cur["wall_s"])
    node_cores = ratio(cur["node_cpu_s"], cur["wall_s"])
    head = (f"pages/s stops growing near-linearly between {prev['nodes']} and {cur['nodes']} nodes: "
            f"{fmt(gain, 2)}× the pages/s for {more:.0f}× the nodes. ")
    other_cores = ratio(cur.get("other_cpu_s"), cur["wall_s"])
    parts = (f"nodes {fmt(node_cores, 2)} cores, PostgreSQL {fmt(pg_cores, 2)}, site "
             f"{fmt(ratio(cur['site_cpu_s'], cur['wall_s']), 2)}"
             + (f", other processes {fmt(other_cores, 2)}" if other_cores and other_cores >= 0.1 else ""))
    if busy is not None and busy >= 0.85:
        why = (f"Why: the machine's CPU. At {cur['nodes']} nodes its {cores} cores were {pct(busy)} busy ({parts}); "
               "nodes on one machine share its cores, so past this point a node adds CPU demand, not capacity. "
               f"PostgreSQL spent {fmt(ratio(1000 * cur['pg_cpu_s'], cur['pages']), 2)} ms of CPU per page "
               f"({fmt(ratio(1000 * prev['pg_cpu_s'], prev['pages']), 2)} at {prev['nodes']}), the nodes "
               f"{fmt(ratio(1000 * cur['node_cpu_s'], cur['pages']), 2)}. Lock waits came on top: "
               f"{fmt(cur.get('lock_wait_mean'), 2)} backends waiting on average "
               f"({pct(cur.get('lock_wait_share'))} of samples).")
    elif (cur.get("lock_wait_mean") or 0) >= 0.5:
        why = (f"Why: lock waits. On average {fmt(cur['lock_wait_mean'], 2)} backends waited on a lock "
               f"({pct(cur.get('lock_wait_share'))} of samples), with CPU {pct(busy)} busy ({parts}).")
    elif pg_cores is not None and pg_cores >= 0.8:
        why = f"Why: PostgreSQL, busy {fmt(pg_cores, 2)} cores of CPU ({parts}), with few lock waits."
    else:
        why = (f"Why: neither CPU ({pct(busy)} busy: {parts}) nor lock waits (mean "
               f"{fmt(cur.get('lock_wait_mean'), 2)}): start-up and the crawl's last pages, which not every "
               "node has work for, weigh more in a shorter run.")
    return head + why


def cmd_render(args):
    records = [json.loads(line) for line in read(args.results).splitlines() if line.strip()]
    rep = render(records, args.cores)
    sys.stdout.write(rep.text())
    if args.markdown:
        meta = dict(kv.split("=", 1) for kv in args.meta or [])
        head = (f"## {meta.get('date', datetime.now().isoformat(timespec='minutes'))}, "
                f"commit {meta.get('commit', '?')}\n\n"
                f"- machine: {args.cores} cores, {meta.get('cpu', '?')}, {meta.get('mem', '?')} RAM\n"
                f"- {meta.get('rustc', 'rustc ?')}; Scrapy {meta.get('scrapy', '?')} on Python {meta.get('python', '?')}\n"
                f"- command: `{meta.get('command', 'bench/run')}` ({meta.get('seconds', '?')} s)\n")
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write("\n" + head + "\n" + rep.markdown() + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scenario")
    s.add_argument("name")
    s.add_argument("params", nargs="*")
    s.set_defaults(func=cmd_scenario)
    c = sub.add_parser("crawl")
    c.add_argument("scenario")
    c.add_argument("crawler")
    c.add_argument("dir")
    c.add_argument("--label")
    c.add_argument("--set", action="append", help="key=value stored with the record")
    c.set_defaults(func=cmd_crawl)
    pg = sub.add_parser("pgcpu")
    pg.add_argument("pgdata")
    pg.set_defaults(func=cmd_pgcpu)
    cl = sub.add_parser("cluster")
    cl.add_argument("dir")
    cl.add_argument("nodes", type=int)
    cl.set_defaults(func=cmd_cluster)
    lim = sub.add_parser("limit")
    lim.add_argument("scenario")
    lim.add_argument("dir")
    lim.set_defaults(func=cmd_limit)
    r = sub.add_parser("render")
    r.add_argument("results")
    r.add_argument("--cores", type=int, default=os.cpu_count())
    r.add_argument("--markdown", help="append a section to this markdown file")
    r.add_argument("--meta", action="append", help="key=value for the markdown heading")
    r.set_defaults(func=cmd_render)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
