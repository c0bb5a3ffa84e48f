#!/usr/bin/env python3
"""Recovery side by side (not run in CI): switchyard with its default settings, nginx and
HAProxy in front of three backends that answer after 30 ms, under 16 keep-alive clients
alternating GETs and POSTs for 16 s. Backend A is killed (SIGKILL) at 3 s and restarted at 7 s,
backend B killed at 5 s and restarted at 8 s. Reports failed GETs, failed POSTs, POSTs that
reached a backend twice, the time from each restart (port accepting) to the first request that
backend received, and the requests each backend received in the last 4 s.

    python3 bench/recovery.py                       # all three peers, one run each
    python3 bench/recovery.py --peers switchyard --runs 3

nginx runs with `max_fails=1 fail_timeout=2s` and HAProxy with `check inter 1s` (the settings
the recovery issue compared against); switchyard with none. One proxy worker each, on CPU 0.
Everything listens on loopback; every process is started here and stopped by PID.
"""
import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the harness's process helpers)

HOST = bench.HOST
PROXY = 8080
ADMIN = 8082
BACKENDS = {"a": 9101, "b": 9102, "c": 9103}
DELAY = 0.030
CLIENTS = 16
DURATION = 16.0
SCRIPT = [(3.0, "kill", "a"), (5.0, "kill", "b"), (7.0, "start", "a"), (8.0, "start", "b")]

BACKEND = r'''
import asyncio, sys, time
port, log = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            fields = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    fields[name.strip().lower()] = value.strip()
            length = int(fields.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            log.write(f"{time.time():.4f} {fields.get('x-test-id', '-')}\n")
            await asyncio.sleep(%DELAY%)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", port, reuse_address=True, backlog=512)
    async with server:
        await server.serve_forever()
asyncio.run(main())
'''.replace("%DELAY%", str(DELAY))

NGINX = """worker_processes 1;
daemon off;
master_process on;
pid {run}/nginx.pid;
error_log {run}/nginx.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {run}/n-body;
    proxy_temp_path {run}/n-proxy;
    fastcgi_temp_path {run}/n-fcgi;
    uwsgi_temp_path {run}/n-uwsgi;
    scgi_temp_path {run}/n-scgi;
    upstream backends {{
{servers}
        keepalive 64;
    }}
    server {{
        listen {host}:{proxy};
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

HAPROXY = """global
    nbthread 1
defaults
    mode http
    option http-keep-alive
    option redispatch
    retries 3
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend fe
    bind {host}:{proxy}
    default_backend be
backend be
    balance roundrobin
{servers}
"""

SWITCHYARD = """[listen]
http = "{host}:{proxy}"
admin = "{host}:{admin}"
[server]
workers = 1
[[route]]
uri = "/"
backends = [{servers}]
"""


def start_backend(name, run):
    log = os.path.join(run, f"backend-{name}.log")
    proc = subprocess.Popen([sys.executable, "-c", BACKEND, str(BACKENDS[name]), log],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if not bench.wait_port(BACKENDS[name]):
        raise RuntimeError(f"backend {name} did not start")
    return proc, time.time()


def start_proxy(peer, run, binary):
    fmt = dict(run=run, host=HOST, proxy=PROXY, admin=ADMIN)
    if peer == "nginx":
        fmt["servers"] = "\n".join(f"        server {HOST}:{p} max_fails=1 fail_timeout=2s;"
                                   for p in BACKENDS.values())
        conf = os.path.join(run, "nginx.conf")
        argv = ["nginx", "-p", run, "-e", os.path.join(run, "nginx.err"), "-c", conf]
        text = NGINX.format(**fmt)
    elif peer == "haproxy":
        fmt["servers"] = "\n".join(f"    server {n} {HOST}:{p} check inter 1s"
                                   for n, p in BACKENDS.items())
        conf = os.path.join(run, "haproxy.cfg")
        argv = ["haproxy", "-db", "-f", conf]
        text = HAPROXY.format(**fmt)
    else:
        fmt["servers"] = ", ".join(f'"{HOST}:{p}"' for p in BACKENDS.values())
        conf = os.path.join(run, "switchyard.toml")
        argv = [binary, "run", "--config", conf]
        text = SWITCHYARD.format(**fmt)
    with open(conf, "w") as f:
        f.write(text)
    proc = bench.start(peer, "0", argv, run)
    if not bench.wait_port(PROXY):
        bench.stop(proc)
        raise RuntimeError(f"{peer} did not start; see {run}/{peer}.log")
    time.sleep(0.5)
    return proc


def client(index, stop_at, results):
    conn, sent = None, 0
    while time.time() < stop_at and sent < 100_000:
        sent += 1
        post = sent % 2 == 0
        request_id = f"{'post' if post else 'get'}-{index}-{sent}"
        ok = False
        try:
            if conn is None:
                conn = http.client.HTTPConnection(HOST, PROXY, timeout=10)
            conn.request("POST" if post else "GET", "/work", body=b"payload" if post else None,
                         headers={"x-test-id": request_id})
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            conn = None
        results.append((post, ok))
        if not ok and conn is not None:
            conn.close()
            conn = None


def one_run(peer, binary):
    run = tempfile.mkdtemp(prefix=f"recovery-{peer}-")
    backends, proxy = {}, None
    results, restarted = [], {}
    try:
        for name in BACKENDS:
            backends[name] = start_backend(name, run)[0]
        proxy = start_proxy(peer, run, binary)
        start = time.time()
        threads = [threading.Thread(target=client, args=(i, start + DURATION, results))
                   for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for at, action, name in SCRIPT:
            time.sleep(max(0.0, start + at - time.time()))
            if action == "kill":
                backends[name].send_signal(signal.SIGKILL)
                backends[name].wait()
            else:
                backends[name], restarted[name] = start_backend(name, run)
        for thread in threads:
            thread.join()
    finally:
        if proxy is not None:
            bench.stop(proxy)
        for proc in backends.values():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    seen, times = {}, {name: [] for name in BACKENDS}
    for name in BACKENDS:
        with open(os.path.join(run, f"backend-{name}.log")) as f:
            for line in f:
                stamp, request_id = line.split()
                times[name].append(float(stamp))
                seen[request_id] = seen.get(request_id, 0) + 1
    back = {name: min((t for t in times[name] if t >= ready), default=None)
            for name, ready in restarted.items()}
    last = start + DURATION - 4.0
    return {
        "gets": sum(1 for post, _ in results if not post),
        "get_failures": sum(1 for post, ok in results if not post and not ok),
        "posts": sum(1 for post, _ in results if post),
        "post_failures": sum(1 for post, ok in results if post and not ok),
        "twice": sum(1 for rid, n in seen.items() if rid.startswith("post") and n > 1),
        "back": {name: (None if t is None else t - restarted[name]) for name, t in back.items()},
        "last4": {name: sum(1 for t in times[name] if t >= last) for name in BACKENDS},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peers", default="switchyard,nginx,haproxy")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--binary", default=os.path.join(bench.ROOT, "target", "release", "switchyard"))
    args = parser.parse_args()
    print("| peer | GETs (failed) | POSTs (failed) | POSTs twice | A back after | B back after "
          "| last 4 s: A / B / C |")
    print("|---|---|---|---|---|---|---|")
    try:
        for _ in range(args.runs):
            for peer in args.peers.split(","):
                r = one_run(peer, args.binary)
                fmt = lambda s: "never" if s is None else f"{s:.2f} s"  # noqa: E731
                print(f"| {peer} | {r['gets']} ({r['get_failures']}) | {r['posts']} ({r['post_failures']}) "
                      f"| {r['twice']} | {fmt(r['back']['a'])} | {fmt(r['back']['b'])} "
                      f"| {r['last4']['a']} / {r['last4']['b']} / {r['last4']['c']} |", flush=True)
    finally:
        bench.stop_all()


if __name__ == "__main__":
    main()
