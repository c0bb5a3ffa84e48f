#!/usr/bin/env python3
"""Side-by-side benchmark: switchyard, nginx and HAProxy on identical backends, one run.

Scenarios (each peer, same pinning, loopback only, every load bounded by count and time):
  h1        HTTP/1.1 keep-alive, wrk -c64, 1 worker
  h1-w2     the same with 2 workers (scaling from 1 to 2)
  h2c       h2load -c64 -m10 over h2c (prior knowledge), 1 worker
  tls-h2    h2load -c64 -m10 over TLS with ALPN h2, 1 worker
  1mib      wrk -c16 on a 1 MiB response, 1 worker
  idle-10k  idle keep-alive client connections (9,000 by default: this machine's hard limit of
            20,000 descriptors and HAProxy's two per connection cap HAProxy there): proxy RSS
  idle-tls-h1, idle-tls-h2
            idle TLS connections (3,000 by default), one request each over HTTP/1.1 or h2 (ALPN)

Prints a table with ratios to the best peer, writes results/<stamp>/table.md, results.json and
chart.svg (and results/latest.* copies for the README). Pinning: load
generator on CPU 1, backends and a 1-worker proxy on CPU 0; 2 workers get CPUs 0,1.

Usage: bench/bench.py [--peers switchyard,nginx,haproxy] [--scenarios h1,h2c,...]
                      [--duration 10] [--warmup 3] [--rounds 3] [--access-log]
With --rounds N the peers and scenarios are measured N times, interleaved, and the table shows
medians (req/s with its min-max) and the median of each round's ratio: use it for decisions.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"  # loopback only
PORTS = {"h1": 8080, "h2c": 8081, "admin": 8082, "tls": 8443, "b1": 9001, "b2": 9002}
SCENARIOS = ["h1", "h1-w2", "h2c", "tls-h2", "1mib", "idle-10k", "idle-tls-h1", "idle-tls-h2"]
PEERS = ["switchyard", "nginx", "haproxy"]
# Also known: switchyard with its access log on (to a file), to measure the log's cost beside
# the same binary without it in one interleaved run (`--peers switchyard,switchyard-log`).
VARIANTS = ["switchyard-log"]
ONE_MIB = 1024 * 1024

BACKEND_CONF = """worker_processes 1;
daemon off;
master_process off;
pid {run}/backend-{port}.pid;
error_log {run}/backend-{port}.error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 30000; }}
http {{
    access_log off;
    default_type text/plain;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path {run}/tmp/b{port}-body;
    proxy_temp_path {run}/tmp/b{port}-proxy;
    fastcgi_temp_path {run}/tmp/b{port}-fcgi;
    uwsgi_temp_path {run}/tmp/b{port}-uwsgi;
    scgi_temp_path {run}/tmp/b{port}-scgi;
    server {{
        listen {host}:{port} backlog=4096;
        location / {{ return 200 "hello\\n"; }}
        location = /1m {{ alias {run}/1m.bin; }}
    }}
}}
"""

NGINX_CONF = """worker_processes {workers};
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log {run}/nginx.error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 30000; }}
http {{
    {access_log}
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path {run}/tmp/n-body;
    proxy_temp_path {run}/tmp/n-proxy;
    fastcgi_temp_path {run}/tmp/n-fcgi;
    uwsgi_temp_path {run}/tmp/n-uwsgi;
    scgi_temp_path {run}/tmp/n-scgi;
    upstream backends {{
        server {host}:{b1};
        server {host}:{b2};
        keepalive 64;
        keepalive_requests 100000000;
    }}
    server {{
        listen {host}:{h1} backlog=4096;
        listen {host}:{h2c} http2 backlog=4096;
        listen {host}:{tls} ssl http2 backlog=4096;
        ssl_certificate {run}/cert.pem;
        ssl_certificate_key {run}/key.pem;
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

HAPROXY_CONF = """global
    nbthread {workers}
    maxconn 9900
{haproxy_global_log}
defaults
    mode http
{haproxy_log}
    option http-keep-alive
    timeout connect 5s
    timeout client  300s
    timeout server  300s
    timeout http-keep-alive 300s
frontend fe
    bind {host}:{h1}
    bind {host}:{h2c} proto h2
    bind {host}:{tls} ssl crt {run}/combined.pem alpn h2,http/1.1
    default_backend be
backend be
    balance roundrobin
    http-reuse always
    server s1 {host}:{b1}
    server s2 {host}:{b2}
"""

SWITCHYARD_CONF = """[listen]
http = "{host}:{h1}"
https = "{host}:{tls}"
admin = "{host}:{admin}"
[tls]
certs = [{{ cert = "{run}/cert.pem", key = "{run}/key.pem" }}]
[server]
workers = {workers}
idle_timeout = "300s"
[proxy]
max_conns_per_backend = 0
[access_log]
{switchyard_log}
[[route]]
uri = "/"
backends = ["{host}:{b1}", "{host}:{b2}"]
"""

STARTED = []  # (Popen) we started, stopped by PID
ACCESS_LOG = False  # --access-log: every peer writes an access log to a file (off: none does)
BACKENDS = []  # PIDs of the backend nginx processes (master and worker), for their CPU time


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(hard, 65536), 1048576)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start(name, cpus, argv, run):
    logf = open(os.path.join(run, f"{name}.log"), "w")
    proc = subprocess.Popen(["taskset", "-c", cpus] + argv, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=raise_nofile)
    STARTED.append(proc)
    return proc


def tree_pids(pid):
    pids = [pid]
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    except OSError:
        return pids
    for child in out.split():
        pids += tree_pids(int(child))
    return pids


def stop(proc):
    if proc.poll() is not None:
        return
    pids = tree_pids(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=5)
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all():
    for proc in reversed(list(STARTED)):
        stop(proc)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def wait_port(port, limit=15):
    end = time.time() + limit
    while time.time() < end:
        if port_open(port):
            return True
        time.sleep(0.05)
    return False


def cpu_split(pids):
    """(user, system) clock ticks used so far by `pids`."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError):
            pass
    return user, system


def status_kib(pids, field):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def run_load(argv, limit):
    out = subprocess.run(["timeout", "-k", "5", str(limit), "taskset", "-c", "1"] + argv,
                         capture_output=True, text=True)
    return out.stdout + out.stderr


def wrk(url, conns, duration, warmup):
    lua = os.path.join(HERE, "wrk-report.lua")
    run_load(["wrk", "-t1", f"-c{conns}", f"-d{warmup}s", url], warmup + 20)
    return ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s", "--latency", "-s", lua, url]


def parse_wrk(text):
    m = re.search(r"WRK_RESULT requests=(\d+) secs=([\d.]+) rps=([\d.]+) p50_us=(\d+) p90_us=\d+ "
                  r"p99_us=(\d+) .* errors=(\d+)", text)
    if not m:
        raise RuntimeError("wrk gave no result: " + text[-400:])
    return {"requests": int(m.group(1)), "rps": float(m.group(3)), "p50_ms": int(m.group(4)) / 1000,
            "p99_ms": int(m.group(5)) / 1000, "errors": int(m.group(6))}


def h2load(url, duration, warmup):
    run_load(["h2load", "-c64", "-m10", "-t1", "-D", str(warmup), url], warmup + 20)
    return ["h2load", "-c64", "-m10", "-t1", "-D", str(duration), url]


def parse_h2load(text):
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", text)
    lat = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", text)
    if not (m and ok):
        raise RuntimeError("h2load gave no result: " + text[-400:])
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    mean = float(lat.group(5)) * scale[lat.group(6)] if lat else 0.0
    return {"requests": int(ok.group(1)), "rps": float(m.group(2)), "p50_ms": mean, "p99_ms": None,
            "errors": int(ok.group(2))}


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
# HEADERS on stream 1, END_STREAM | END_HEADERS: GET https :path / (static indexes), :authority literal.
H2_BLOCK = bytes([0x82, 0x87, 0x84, 0x41, 11]) + b"bench.local"
H2_GET = bytes([0, 0, len(H2_BLOCK), 1, 5, 0, 0, 0, 1]) + H2_BLOCK


def h2_answered(sock):
    """True once a HEADERS frame for stream 1 arrives (frames before it are skipped)."""
    data = b""
    while True:
        while len(data) >= 9:
            length = int.from_bytes(data[:3], "big")
            if data[3] == 1 and int.from_bytes(data[5:9], "big") & 0x7FFFFFFF == 1:
                return True
            if len(data) < 9 + length:
                break
            data = data[9 + length:]
        more = sock.recv(65536)
        if not more:
            return False
        data += more


def idle_connections(port, count, alpn=None):
    """Opens `count` keep-alive connections, one request each, and holds them open: plain
    HTTP/1.1, or TLS speaking `alpn` (http/1.1 or h2)."""
    ctx = None
    if alpn:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols([alpn])
    request = H2_PREFACE + H2_GET if alpn == "h2" else b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n"
    conns, failed = [], 0
    for _ in range(count):
        s = socket.create_connection((HOST, port), timeout=10)
        if ctx:
            s = ctx.wrap_socket(s, server_hostname="bench.local")
        s.sendall(request)
        conns.append(s)
    for s in conns:
        try:
            ok = h2_answered(s) if alpn == "h2" else s.recv(4096).startswith(b"HTTP/1.1 200")
            failed += not ok
        except OSError:
            failed += 1
    return conns, failed


def upstream_counters():
    """switchyard's (connections opened, requests sent) upstream counters, from `/metrics`."""
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://{HOST}:{PORTS['admin']}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    opened = re.search(r"^switchyard_upstream_connections_opened_total (\d+)$", text, re.M)
    sent = re.search(r"^switchyard_upstream_requests_total (\d+)$", text, re.M)
    return (int(opened.group(1)), int(sent.group(1))) if opened and sent else None


def make_assets(run):
    os.makedirs(os.path.join(run, "tmp"), exist_ok=True)
    with open(os.path.join(run, "1m.bin"), "wb") as f:
        f.write(os.urandom(ONE_MIB))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=bench.local", "-addext", "subjectAltName=DNS:bench.local",
                    "-keyout", os.path.join(run, "key.pem"), "-out", os.path.join(run, "cert.pem")],
                   check=True, capture_output=True)
    with open(os.path.join(run, "combined.pem"), "w") as out:
        for name in ("cert.pem", "key.pem"):
            with open(os.path.join(run, name)) as f:
                out.write(f.read())


def start_backends(run):
    procs = []
    for port in (PORTS["b1"], PORTS["b2"]):
        conf = os.path.join(run, f"backend-{port}.conf")
        with open(conf, "w") as f:
            f.write(BACKEND_CONF.format(run=run, port=port, host=HOST))
        procs.append(start(f"backend-{port}", "0", ["nginx", "-p", run, "-e", os.path.join(run, f"b{port}.err"), "-c", conf], run))
        if not wait_port(port):
            raise RuntimeError(f"backend {port} did not start")
    time.sleep(0.3)  # the worker process
    BACKENDS[:] = [pid for proc in procs for pid in tree_pids(proc.pid)]
    return procs


def start_peer(peer, workers, run, binary):
    cpus = "0" if workers == 1 else "0,1"
    fmt = dict(run=run, host=HOST, workers=workers, h1=PORTS["h1"], h2c=PORTS["h2c"], tls=PORTS["tls"],
               admin=PORTS["admin"], b1=PORTS["b1"], b2=PORTS["b2"])
    # The same choice for every peer: no access log, or each one's usual line into a file.
    log_file = os.path.join(run, f"{peer}-access.log")
    fmt.update(
        access_log=f"access_log {log_file} combined;" if ACCESS_LOG else "access_log off;",
        haproxy_global_log="    log stdout format raw local0" if ACCESS_LOG else "",
        haproxy_log="    log global\n    option httplog" if ACCESS_LOG else "",
        switchyard_log=(f'path = "{log_file}"' if ACCESS_LOG or peer == "switchyard-log"
                        else "enabled = false"),
    )
    if peer == "nginx":
        conf = os.path.join(run, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(**fmt))
        argv = ["nginx", "-p", run, "-e", os.path.join(run, "nginx.err"), "-c", conf]
    elif peer == "haproxy":
        conf = os.path.join(run, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY_CONF.format(**fmt))
        argv = ["haproxy", "-db", "-f", conf]
    else:
        conf = os.path.join(run, "switchyard.toml")
        with open(conf, "w") as f:
            f.write(SWITCHYARD_CONF.format(**fmt))
        argv = [binary, "run", "--config", conf]
    proc = start(f"{peer}-w{workers}", cpus, argv, run)
    if not wait_port(PORTS["h1"]) or not wait_port(PORTS["tls"]):
        stop(proc)
        raise RuntimeError(f"{peer} did not start; see {run}/{peer}-w{workers}.log")
    time.sleep(0.3)
    return proc


def measure(peer, scenario, args, run, binary):
    workers = 2 if scenario == "h1-w2" else 1
    proc = start_peer(peer, workers, run, binary)
    try:
        pids = tree_pids(proc.pid)
        h2c_port = PORTS["h1"] if peer.startswith("switchyard") else PORTS["h2c"]
        if scenario.startswith("idle"):
            before = status_kib(pids, "VmRSS")
            if scenario == "idle-10k":
                count = args.idle
                conns, failed = idle_connections(PORTS["h1"], count)
            else:
                count = args.idle_tls
                alpn = "h2" if scenario == "idle-tls-h2" else "http/1.1"
                conns, failed = idle_connections(PORTS["tls"], count, alpn)
            time.sleep(6)  # idle for a while: past any periodic housekeeping (switchyard: 5 s)
            rss = status_kib(tree_pids(proc.pid), "VmRSS")
            for s in conns:
                s.close()
            return {"rss_mib": rss / 1024, "rss_base_mib": before / 1024, "errors": failed,
                    "connections": count}
        if scenario in ("h1", "h1-w2"):
            argv = wrk(f"http://{HOST}:{PORTS['h1']}/", 64, args.duration, args.warmup)
        elif scenario == "1mib":
            argv = wrk(f"http://{HOST}:{PORTS['h1']}/1m", 16, args.duration, args.warmup)
        elif scenario == "h2c":
            argv = h2load(f"http://{HOST}:{h2c_port}/", args.duration, args.warmup)
        else:
            argv = h2load(f"https://{HOST}:{PORTS['tls']}/", args.duration, args.warmup)
        # Reuse is counted from 1 s into the measured run: the warm-up load's abrupt end cancels
        # the exchanges in flight, whose upstream connections are closed (never reused
        # mid-response), and replacing them is not the steady state.
        samples = {}
        sampler = threading.Timer(1.0, lambda: samples.update(before=upstream_counters()))
        if peer == "switchyard":
            sampler.start()
        t0, b0 = cpu_split(pids), cpu_split(BACKENDS)
        text = run_load(argv, args.duration + 30)
        sampler.cancel()
        if sampler.is_alive():
            sampler.join()
        before = samples.get("before")
        t1, b1 = cpu_split(tree_pids(proc.pid)), cpu_split(BACKENDS)
        result = parse_wrk(text) if argv[0] == "wrk" else parse_h2load(text)
        per_req = 1e6 / os.sysconf("SC_CLK_TCK") / max(result["requests"], 1)
        result["user_us_per_req"] = (t1[0] - t0[0]) * per_req
        result["sys_us_per_req"] = (t1[1] - t0[1]) * per_req
        result["cpu_us_per_req"] = result["user_us_per_req"] + result["sys_us_per_req"]
        # The backends share CPU 0 with a 1-worker proxy: req/s there is bounded by the sum.
        result["backend_us_per_req"] = (sum(b1) - sum(b0)) * per_req
        result["rss_mib"] = status_kib(tree_pids(proc.pid), "VmHWM") / 1024
        after = upstream_counters() if before else None
        if before and after and after[1] > before[1]:
            opened, sent = after[0] - before[0], after[1] - before[1]
            result["upstream_reuse"] = 1 - opened / sent
        return result
    finally:
        stop(proc)
        for port in (PORTS["h1"], PORTS["h2c"], PORTS["tls"]):
            deadline = time.time() + 5
            while port_open(port) and time.time() < deadline:
                time.sleep(0.05)


def combine(rounds, peers, scenarios):
    """Medians over rounds of every figure, the req/s range, and each round's switchyard-to-best-
    peer ratios (their median: a noisy minute moves every peer of that round together)."""
    combined = {}
    for sc in scenarios:
        combined[sc] = {}
        for p in peers:
            rows = [r[sc][p] for r in rounds if "error" not in r[sc][p]]
            if not rows:
                combined[sc][p] = rounds[-1][sc][p]
                continue
            keys = [k for k, v in rows[0].items() if isinstance(v, (int, float))]
            merged = {k: statistics.median(row[k] for row in rows if row.get(k) is not None)
                      for k in keys if any(row.get(k) is not None for row in rows)}
            merged["rounds"] = len(rows)
            merged["errors"] = max(row.get("errors", 0) for row in rows)  # the worst round
            if "rps" in merged:
                merged["rps_range"] = (min(row["rps"] for row in rows), max(row["rps"] for row in rows))
            combined[sc][p] = merged
        ratios = {"rps_ratio": [], "cpu_ratio": []}
        for r in rounds:
            mine = r[sc].get("switchyard")
            others = [o for q, o in r[sc].items() if q != "switchyard" and "error" not in o and "rps" in o]
            if not mine or "error" in mine or "rps" not in mine or not others:
                continue
            ratios["rps_ratio"].append(mine["rps"] / max(o["rps"] for o in others))
            ratios["cpu_ratio"].append(mine["cpu_us_per_req"] / min(o["cpu_us_per_req"] for o in others))
        for k, v in ratios.items():
            if v and "switchyard" in combined[sc]:
                combined[sc]["switchyard"][k] = statistics.median(v)
    return combined


def table(results, peers, scenarios):
    lines = ["| scenario | peer | req/s | vs best peer | p50 ms | p99 ms | CPU µs/req (user+sys) | vs best peer "
             "| backends µs/req | RSS MiB | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for sc in scenarios:
        rows = {p: results.get(sc, {}).get(p) for p in peers}
        others = [r for p, r in rows.items() if p != "switchyard" and r and "error" not in r]
        for p in peers:
            r = rows.get(p)
            if not r:
                continue
            if "error" in r:
                lines.append(f"| {sc} | {p} | failed: {r['error'][:60]} | | | | | | | | |")
                continue
            if sc.startswith("idle"):
                best = min((o["rss_mib"] for o in others), default=None)
                ratio = f"{r['rss_mib'] / best:.2f}x RSS" if best and p == "switchyard" else ""
                lines.append(f"| {sc} | {p} | {int(r['connections'])} conns | {ratio} | | | | | | {r['rss_mib']:.1f} | {r['errors']} |")
                continue
            best_rps = max((o["rps"] for o in others), default=None)
            best_cpu = min((o["cpu_us_per_req"] for o in others), default=None)
            rps_ratio = f"{r.get('rps_ratio', r['rps'] / (best_rps or 1)):.2f}" if best_rps and p == "switchyard" else ""
            cpu_ratio = (f"{r.get('cpu_ratio', r['cpu_us_per_req'] / (best_cpu or 1)):.2f}"
                         if best_cpu and p == "switchyard" else "")
            p99 = f"{r['p99_ms']:.2f}" if r.get("p99_ms") is not None else "-"
            rps = f"{r['rps']:,.0f}"
            if r.get("rounds", 1) > 1:
                low, high = r["rps_range"]
                rps += f" ({low / 1000:.1f}k-{high / 1000:.1f}k)"
            cpu = f"{r['cpu_us_per_req']:.1f}"
            if r.get("user_us_per_req") is not None:
                cpu += f" ({r['user_us_per_req']:.1f}+{r['sys_us_per_req']:.1f})"
            backends = f"{r['backend_us_per_req']:.1f}" if r.get("backend_us_per_req") is not None else "-"
            lines.append(f"| {sc} | {p} | {rps} | {rps_ratio} | {r['p50_ms']:.2f} | {p99} | "
                         f"{cpu} | {cpu_ratio} | {backends} | {r['rss_mib']:.1f} | {r['errors']} |")
    reuse = [f"{sc} {results[sc]['switchyard']['upstream_reuse']:.5f}" for sc in scenarios
             if results.get(sc, {}).get("switchyard", {}).get("upstream_reuse") is not None]
    if reuse:
        lines.append("")
        lines.append("switchyard upstream connection reuse in the steady state, from 1 s into each "
                     "measured run (1 - connections opened / requests sent): " + ", ".join(reuse))
    return "\n".join(lines)


def chart(results, peers, scenarios):
    """Grouped bars: each peer's req/s (or 1/RSS for the idle rows) relative to the best in the scenario."""
    colors = {"switchyard": "#d9480f", "switchyard-log": "#f08c00", "nginx": "#2b8a3e",
              "haproxy": "#1864ab"}
    width, height, left, top, bar = 820, 300, 50, 30, 18
    group = len(peers) * bar + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 95}" font-family="sans-serif" font-size="12">',
             f'<text x="{left}" y="18" font-weight="bold">Relative throughput (best = 1.0; idle rows: lower memory = longer bar)</text>']
    for i in range(0, 11, 2):
        y = top + height - height * i / 10
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{i / 10:.1f}</text>')
    for g, sc in enumerate(scenarios):
        rows = {p: results.get(sc, {}).get(p) for p in peers}
        vals = {}
        for p, r in rows.items():
            if r and "error" not in r:
                vals[p] = 1 / r["rss_mib"] if sc.startswith("idle") else r["rps"]
        if not vals:
            continue
        best = max(vals.values())
        x0 = left + 20 + g * group
        for k, p in enumerate(peers):
            if p not in vals:
                continue
            h = height * vals[p] / best
            x = x0 + k * bar
            parts.append(f'<rect x="{x}" y="{top + height - h:.1f}" width="{bar - 3}" height="{h:.1f}" fill="{colors.get(p, "#888")}"/>')
        parts.append(f'<text x="{x0 + len(peers) * bar / 2}" y="{top + height + 16}" text-anchor="middle">{sc}</text>')
    for k, p in enumerate(peers):
        parts.append(f'<rect x="{left + k * 120}" y="{top + height + 34}" width="12" height="12" fill="{colors.get(p, "#888")}"/>')
        parts.append(f'<text x="{left + k * 120 + 18}" y="{top + height + 44}">{p}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--idle", type=int, default=9000)
    parser.add_argument("--idle-tls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved passes over every scenario and peer; medians are reported")
    parser.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "switchyard"))
    parser.add_argument("--access-log", action="store_true",
                        help="every peer writes its access log (nginx combined to a file, HAProxy "
                             "httplog to its stdout, switchyard text to a file); default: none does")
    args = parser.parse_args()
    global ACCESS_LOG
    ACCESS_LOG = args.access_log
    peers = [p for p in args.peers.split(",") if p]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for p in peers:
        if p not in PEERS + VARIANTS:
            sys.exit(f"unknown peer {p}; known: {PEERS + VARIANTS}")
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit(f"unknown scenario {s}; known: {SCENARIOS}")
    for port in PORTS.values():
        if port_open(port):
            sys.exit(f"port {port} is in use; the bench needs {sorted(PORTS.values())} free")
    raise_nofile()

    def interrupted(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = os.path.join(HERE, "results", stamp)
    run = os.path.join(out_dir, "run")
    os.makedirs(run)
    make_assets(run)
    rounds = []
    try:
        start_backends(run)
        for n in range(args.rounds):
            results = {}
            for sc in scenarios:
                results[sc] = {}
                for p in peers:
                    log(f"round {n + 1}/{args.rounds} {sc}: {p}")
                    try:
                        results[sc][p] = measure(p, sc, args, run, args.binary)
                    except Exception as e:  # one failed row must not lose the others
                        log(f"{sc} {p} failed: {e}")
                        results[sc][p] = {"error": str(e)}
            rounds.append(results)
    finally:
        stop_all()
    results = combine(rounds, peers, scenarios)
    machine = f"{os.cpu_count()} CPUs, {subprocess.run(['uname', '-sr'], capture_output=True, text=True).stdout.strip()}"
    rounds_note = (f"{args.rounds} interleaved rounds: each figure is the median over rounds, req/s "
                   f"shows the min-max, and the ratios are medians of each round's ratio; "
                   if args.rounds > 1 else "")
    header = (f"Run {stamp} on {machine}; {rounds_note}{args.duration}s per row after {args.warmup}s warm-up; "
              f"load generator on CPU 1, backends and 1-worker proxies on CPU 0, 2 workers on CPUs 0,1.\n"
              f"`vs best peer`: switchyard's req/s ÷ the best of the others (higher is better) and its "
              f"CPU µs/req ÷ the lowest of the others (lower is better). h2 rows: p50 column = mean latency. "
              f"`backends µs/req`: CPU time of the two backends per request (they share CPU 0 with a "
              f"1-worker proxy, so its req/s is bounded by the sum of the two CPU columns).\n")
    md = header + "\n" + table(results, peers, scenarios) + "\n"
    print(md)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"combined": results, "rounds": rounds}, f, indent=1)
    svg = chart(results, peers, scenarios)
    with open(os.path.join(out_dir, "chart.svg"), "w") as f:
        f.write(svg)
    for name in ("table.md", "chart.svg"):
        shutil.copy(os.path.join(out_dir, name), os.path.join(HERE, "results", "latest-" + name))
    shutil.rmtree(run, ignore_errors=True)


if __name__ == "__main__":
    main()
