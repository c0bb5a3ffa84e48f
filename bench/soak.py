#!/usr/bin/env python3
"""Soak test (not run in CI): mixed HTTP/1.1 (GETs and POSTs on keep-alive connections), h2c
(h2load, 20 requests per connection) and upgraded connections (a WebSocket handshake, then bytes
both ways) through the release binary for a bounded time, while registrations churn over the
admin API and a backend restarts every 5 seconds. Reports the router's RSS and open descriptors at
the start, 6 s after the load and 66 s after (once idle backend connections have expired), and
requests that failed.

    python3 bench/soak.py                  # 600 s (the default), one worker
    SOAK_SECONDS=60 python3 bench/soak.py  # shorter

Everything listens on loopback; the router it starts is stopped by PID. Backends are Python
http.server threads in this process.
"""
import http.client
import http.server
import json
import os
import random
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "switchyard")
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.flush()
            data = self.rfile.read(5)
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return
        size = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/bytes/") else 5
        body = b"x" * size
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_backend(port):
    server = Server(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def rss_and_fds(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = {}
        self.failed = {}

    def add(self, kind, ok):
        with self.lock:
            table = self.ok if ok else self.failed
            table[kind] = table.get(kind, 0) + 1


def h1_client(port, counts, stop):
    while not stop.is_set():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for _ in range(50):
                if random.random() < 0.3:
                    conn.request("POST", "/echo", body=os.urandom(random.randint(0, 20000)),
                                 headers={"Host": "soak.test"})
                else:
                    conn.request("GET", f"/bytes/{random.randint(0, 100000)}", headers={"Host": "soak.test"})
                response = conn.getresponse()
                response.read()
                counts.add("http1", response.status == 200)
            conn.close()
        except Exception:
            counts.add("http1", False)


def h2_client(port, counts, stop):
    """20 requests on one h2c connection, 4 at a time, by h2load (curl 7.88 does not reuse an
    h2c connection for a second URL)."""
    while not stop.is_set():
        urls = [f"http://127.0.0.1:{port}/bytes/{random.randint(0, 200000)}" for _ in range(20)]
        args = ["h2load", "-n", "20", "-c", "1", "-m", "4", "-H", ":authority: soak.test", *urls]
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
            line = next(l for l in out.splitlines() if l.startswith("status codes:"))
            ok = int(line.split()[2])
            for _ in range(ok):
                counts.add("h2c", True)
            for _ in range(20 - ok):
                counts.add("h2c", False)
        except Exception:
            for _ in range(20):
                counts.add("h2c", False)


def upgrade_client(port, counts, stop):
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: soak.test\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                s.sendall(b"hello")
                rest = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""
                while len(rest) < 5:
                    chunk = s.recv(5)
                    if not chunk:
                        break
                    rest += chunk
                counts.add("upgrade", head.startswith(b"HTTP/1.1 101") and rest == b"hello")
        except Exception:
            counts.add("upgrade", False)
        time.sleep(0.05)


def churn(admin, backend_ports, counts, stop):
    while not stop.is_set():
        port = random.choice(backend_ports)
        message = {"host": "127.0.0.1", "port": port, "uris": [f"churn{random.randint(0, 999)}.test"]}
        path = random.choice(["/routes/register", "/routes/unregister"])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
            conn.request("POST", path, body=json.dumps(message))
            counts.add("registry", conn.getresponse().status == 200)
            conn.close()
        except Exception:
            counts.add("registry", False)
        time.sleep(0.01)


def main():
    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    ports = [free_port() for _ in range(3)]
    backends = {port: start_backend(port) for port in ports}
    http_port, admin_port = free_port(), free_port()
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write(f"""[listen]
http = "127.0.0.1:{http_port}"
admin = "127.0.0.1:{admin_port}"
[server]
workers = 1
[[route]]
uri = "soak.test"
backends = [{", ".join(f'"127.0.0.1:{p}"' for p in ports)}]
""")
    config.close()
    router = subprocess.Popen([BINARY, "run", "--config", config.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        start = rss_and_fds(router.pid)
        counts, stop = Counts(), threading.Event()
        threads = [threading.Thread(target=h1_client, args=(http_port, counts, stop)) for _ in range(4)]
        threads += [threading.Thread(target=h2_client, args=(http_port, counts, stop)) for _ in range(2)]
        threads += [threading.Thread(target=upgrade_client, args=(http_port, counts, stop))]
        threads += [threading.Thread(target=churn, args=(admin_port, ports, counts, stop))]
        for t in threads:
            t.start()
        deadline = time.time() + SECONDS
        restarts = 0
        while time.time() < deadline:
            time.sleep(min(5, max(0, deadline - time.time())))
            # Restart one backend: stop it, wait, serve the same port again.
            port = ports[restarts % len(ports)]
            backends[port].shutdown()
            backends[port].server_close()
            time.sleep(0.5)
            backends[port] = start_backend(port)
            restarts += 1
        stop.set()
        for t in threads:
            t.join(timeout=60)
        time.sleep(6)  # idle connections parked, memory purged
        end = rss_and_fds(router.pid)
        time.sleep(60)  # pooled backend connections past upstream_idle_timeout, swept
        settled = rss_and_fds(router.pid)
        total_ok = sum(counts.ok.values())
        total_failed = sum(counts.failed.values())
        print(f"soak {SECONDS} s, {restarts} backend restarts")
        print(f"router RSS {start[0]:.1f} MiB -> {end[0]:.1f} MiB 6 s after the load -> "
              f"{settled[0]:.1f} MiB 66 s after; open descriptors {start[1]} -> {end[1]} -> {settled[1]}")
        print(f"ok {total_ok} {counts.ok}")
        print(f"failed {total_failed} {counts.failed}")
        sys.exit(0 if router.poll() is None else 1)
    finally:
        router.terminate()
        try:
            router.wait(timeout=10)
        except subprocess.TimeoutExpired:
            router.kill()
        for server in backends.values():
            server.shutdown()
        os.unlink(config.name)


if __name__ == "__main__":
    main()
