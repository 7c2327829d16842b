"""shop's web service: one page that calls every other part of the shop.

GET /?q=WORDS asks auth whether web's API key is good, searches the
catalogue, counts the view in redis, records the visit in MariaDB and
sends a line to the log collector, each by its service name, and answers
one line per part saying what that part answered (and which replica).
The status is 200 when every part answered, 502 when one did not (its
line says why). Every replica runs this same program behind lb.
"""

import json
import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import pymysql
import redis

PORT = int(os.environ.get("PORT", "8000"))
AUTH_URL = os.environ.get("AUTH_URL", "http://auth:8001")
SEARCH_URL = os.environ.get("SEARCH_URL", "http://search:8002")
REDIS_HOST = os.environ.get("REDIS_HOST", "redis")
DB_HOST = os.environ.get("DB_HOST", "db")
LOG_HOST, _, LOG_PORT = os.environ.get("LOG_ADDR", "log:5140").rpartition(":")
TIMEOUT = 3  # seconds per call to another part
MAX_QUERY = 200  # bytes
HOST = socket.gethostname()


def secret(name):
    with open(f"/run/secrets/{name}", encoding="utf-8") as f:
        return f.read().strip()


API_KEY = secret("api_key")
DB_PASSWORD = secret("db_password")
store = redis.Redis(host=REDIS_HOST, port=6379, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)


def get_json(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        return json.load(r)


def check_auth():
    got = get_json(AUTH_URL + "/verify", {"Authorization": "Bearer " + API_KEY})
    return f"ok, auth {got['replica']} accepted web's API key"


def check_search(q):
    got = get_json(SEARCH_URL + "/search?q=" + quote(q))
    names = ", ".join(p["name"] for p in got["results"]) or "nothing"
    return f'"{q}" found {len(got["results"])} products ({names}) on search {got["replica"]}'


def check_redis():
    return f"page viewed {store.incr('shop:views')} times"


def check_db():
    conn = pymysql.connect(host=DB_HOST, user="shop", password=DB_PASSWORD, database="shop",
                           connect_timeout=TIMEOUT, read_timeout=TIMEOUT, write_timeout=TIMEOUT)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO visits (replica) VALUES (%s)", (HOST,))
            visit = cur.lastrowid
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
        conn.commit()
    finally:
        conn.close()
    return f"visit {visit} stored in MariaDB {version.split('-')[0]}"


def check_log(q):
    with socket.create_connection((LOG_HOST, int(LOG_PORT)), timeout=TIMEOUT) as s:
        s.sendall(f"web {HOST} served GET / q={q!r}\n".encode())
        reply = s.makefile("rb").readline().decode().split()
    if len(reply) != 3 or reply[0] != "ok":
        raise RuntimeError(f"log answered {reply!r}")
    return f"line {reply[1]} kept by log {reply[2]}"


def page(q):
    """Each part's line, and whether every part answered."""
    parts = [
        ("auth", check_auth),
        ("search", lambda: check_search(q)),
        ("redis", check_redis),
        ("db", check_db),
        ("log", lambda: check_log(q)),
    ]
    lines, ok = [f"web: replica {HOST}"], True
    for name, call in parts:
        try:
            lines.append(f"{name}: {call()}")
        except (OSError, urllib.error.URLError, redis.RedisError, pymysql.MySQLError, RuntimeError, KeyError, ValueError) as e:
            ok = False
            lines.append(f"{name}: FAILED: {e}")
    head = "berth shop: every part answered" if ok else "berth shop: a part did not answer"
    return ok, "\n".join([head] + lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            # Healthy means this replica serves. It does not ask the other
            # parts: a db restart should not take every web replica out of
            # the load balancer; the page says which part is failing.
            self.reply(200, "ok\n")
            return
        if url.path != "/":
            self.reply(404, "not found\n")
            return
        q = parse_qs(url.query).get("q", ["tea"])[0]
        if len(q.encode()) > MAX_QUERY:
            self.reply(400, f"q is longer than {MAX_QUERY} bytes\n")
            return
        ok, body = page(q)
        self.reply(200 if ok else 502, body)

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if not self.path.startswith("/healthz"):
            sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
            sys.stdout.flush()


def main():
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"web {HOST} listening on :{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
