"""shop's auth service: says whether a caller holds the shop's API key.

The key is the compose secret api_key, read from /run/secrets/api_key at
start. GET /verify with "Authorization: Bearer <key>" answers 200 and a
JSON body naming this replica; a missing or wrong key answers 401.
"""

import hmac
import json
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8001"))
KEY_FILE = os.environ.get("API_KEY_FILE", "/run/secrets/api_key")


def read_key():
    with open(KEY_FILE, encoding="utf-8") as f:
        key = f.read().strip()
    if not key:
        sys.exit(f"auth: {KEY_FILE} is empty; give the api_key secret a value")
    return key.encode()


KEY = read_key()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, {"ok": True})
        elif self.path == "/verify":
            self.verify()
        else:
            self.reply(404, {"error": "not found"})

    def verify(self):
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        # compare_digest: the time taken does not say how much matched.
        if scheme != "Bearer" or not hmac.compare_digest(token.strip().encode(), KEY):
            self.reply(401, {"ok": False, "error": "missing or wrong API key"})
            return
        self.reply(200, {"ok": True, "replica": socket.gethostname()})

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.path != "/healthz":
            sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
            sys.stdout.flush()


def main():
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"auth {socket.gethostname()} listening on :{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
