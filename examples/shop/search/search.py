"""shop's search service: finds products in a small catalogue.

GET /search?q=WORDS answers JSON: the products whose name or tags hold every
word (case-insensitive), and the replica that answered.
"""

import json
import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ.get("PORT", "8002"))
MAX_QUERY = 200  # bytes; a longer query is refused, not searched

CATALOGUE = [
    {"id": 1, "name": "Green tea", "tags": ["tea", "drink"]},
    {"id": 2, "name": "Black tea", "tags": ["tea", "drink"]},
    {"id": 3, "name": "Coffee beans", "tags": ["coffee", "drink"]},
    {"id": 4, "name": "Teapot", "tags": ["kitchen"]},
    {"id": 5, "name": "Oat biscuits", "tags": ["food", "snack"]},
]


def search(query):
    words = query.lower().split()
    found = []
    for p in CATALOGUE:
        text = " ".join([p["name"].lower()] + p["tags"])
        if words and all(w in text.split() for w in words):
            found.append(p)
    return found


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self.reply(200, {"ok": True})
            return
        if url.path != "/search":
            self.reply(404, {"error": "not found"})
            return
        q = parse_qs(url.query).get("q", [""])[0]
        if len(q.encode()) > MAX_QUERY:
            self.reply(400, {"error": f"q is longer than {MAX_QUERY} bytes"})
            return
        self.reply(200, {"query": q, "results": search(q), "replica": socket.gethostname()})

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
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
    print(f"search {socket.gethostname()} listening on :{PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
