"""hello's web service: counts visits in redis and says which replica answered.

Every replica runs this same program; the load balancer spreads requests over
them, so repeated requests show different replica names and one shared count.
"""

import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

PORT = int(os.environ.get("PORT", "8000"))
REDIS_HOST = os.environ.get("REDIS_HOST", "redis")
GREETING_FILE = os.environ.get("GREETING_FILE", "/run/secrets/greeting")

store = redis.Redis(host=REDIS_HOST, port=6379, socket_timeout=2, socket_connect_timeout=2)


def greeting():
    """Read the secret on each request, so a changed secret shows at once."""
    try:
        with open(GREETING_FILE, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        return f"(no greeting: {e.strerror})"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            self.healthz()
            return
        if self.path != "/":
            self.reply(404, "not found\n")
            return
        try:
            hits = store.incr("hits")
        except redis.RedisError as e:
            self.reply(503, f"redis is not answering: {e}\n")
            return
        self.reply(200, f"{greeting()} I am {socket.gethostname()}; this app has been visited {hits} times.\n")

    def healthz(self):
        # Healthy means this replica can serve: it answers and reaches redis.
        try:
            store.ping()
        except redis.RedisError as e:
            self.reply(503, f"redis: {e}\n")
            return
        self.reply(200, "ok\n")

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.path == "/healthz":
            return  # the healthcheck asks every few seconds: not news
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()


def main():
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    # docker stop sends SIGTERM; leave the serve loop cleanly on it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"web {socket.gethostname()} listening on :{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
