#!/usr/bin/env python3
"""A route service for the tests, written from gorouter's protocol with its own crypto
(cryptography's AES-GCM and hashlib's PBKDF2, none of the router's code).

    route_service.py serve ROUTER_PORT SECRET CERT KEY
        HTTPS on a free loopback port (printed first): each request's signature is opened and
        checked against X-CF-Forwarded-Url and the clock, then the request is sent back through
        the router at ROUTER_PORT with its headers (and X-Route-Service: seen); the router's
        answer is passed on with X-Route-Service: seen. A bad signature gets 400.
    route_service.py sign SECRET URL SECONDS_AGO
        prints a signature and its metadata (one per line) for URL, made SECONDS_AGO.
"""
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import urllib.parse

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

UTC = datetime.timezone.utc


def key(secret):
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), b"", 100001, 16)


def unpad(text):
    return text + "=" * (-len(text) % 4)


def sign(secret, url, when):
    nonce = os.urandom(12)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    payload = json.dumps({"forwarded_url": url, "requested_time": stamp}).encode()
    sealed = AESGCM(key(secret)).encrypt(nonce, payload, None)
    metadata = json.dumps({"nonce": base64.b64encode(nonce).decode()}).encode()
    return base64.urlsafe_b64encode(sealed).decode(), base64.urlsafe_b64encode(metadata).decode()


def open_signature(secret, signature, metadata):
    nonce = base64.b64decode(json.loads(base64.urlsafe_b64decode(unpad(metadata)))["nonce"])
    sealed = base64.urlsafe_b64decode(unpad(signature))
    return json.loads(AESGCM(key(secret)).decrypt(nonce, sealed, None))


def parse_time(text):
    """RFC 3339 in UTC, as Go's RFC3339Nano writes it (fraction to microseconds)."""
    base, _, fraction = text.rstrip("Z").partition(".")
    when = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return when + datetime.timedelta(microseconds=int((fraction + "000000")[:6]))


def serve(router_port, secret, cert, key_file):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("X-Route-Service", "seen")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def handle_any(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            url = self.headers.get("X-CF-Forwarded-Url", "")
            try:
                payload = open_signature(secret, self.headers["X-CF-Proxy-Signature"],
                                         self.headers["X-CF-Proxy-Metadata"])
            except Exception as error:  # noqa: BLE001 (any failure is a bad signature)
                return self.reply(400, f"bad signature: {error!r}".encode())
            if payload["forwarded_url"] != url:
                return self.reply(400, b"forwarded url does not match the signature")
            age = datetime.datetime.now(UTC) - parse_time(payload["requested_time"])
            if not datetime.timedelta(seconds=-5) <= age <= datetime.timedelta(seconds=60):
                return self.reply(400, f"signature age {age}".encode())
            target = urllib.parse.urlsplit(url)
            if self.headers.get("Upgrade"):
                return self.relay_upgrade(target)
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in ("host", "content-length", "connection")}
            headers["Host"] = target.netloc
            headers["X-Route-Service"] = "seen"
            path = target.path + ("?" + target.query if target.query else "")
            back = http.client.HTTPConnection("127.0.0.1", router_port, timeout=10)
            back.request(self.command, path, body=body or None, headers=headers)
            answer = back.getresponse()
            data = answer.read()
            passed = [(n, v) for n, v in answer.getheaders()
                      if n.lower() not in ("content-length", "transfer-encoding", "connection")]
            self.reply(answer.status, data, passed)

        def relay_upgrade(self, target):
            """An upgrade: the request goes back through the router as it came, then bytes
            flow both ways until either side closes."""
            back = socket.create_connection(("127.0.0.1", router_port))
            path = target.path + ("?" + target.query if target.query else "")
            lines = [f"{self.command} {path} HTTP/1.1", f"Host: {target.netloc}"]
            lines += [f"{name}: {value}" for name, value in self.headers.items()
                      if name.lower() != "host"]
            back.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

            def pump(source, sink):
                try:
                    while data := source.recv(65536):
                        sink.sendall(data)
                except OSError:
                    pass
                for end in (source, sink):
                    try:
                        end.close()
                    except OSError:
                        pass

            threading.Thread(target=pump, args=(back, self.connection), daemon=True).start()
            pump(self.connection, back)
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def main():
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif sys.argv[1] == "sign":
        ago = datetime.timedelta(seconds=float(sys.argv[4]))
        for line in sign(sys.argv[2], sys.argv[3], datetime.datetime.now(UTC) - ago):
            print(line)


if __name__ == "__main__":
    main()
