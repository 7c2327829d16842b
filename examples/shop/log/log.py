"""shop's log collector: the other services send it lines.

TCP on port 5140: each line sent is kept and answered with "ok N HOST",
N being the number of lines this collector has kept, HOST the replica;
"PING" is answered with "PONG" and not kept. UDP on the same port: each
datagram is one line, kept without an answer (syslog-style). Every kept
line is printed, so `berth logs log` shows the shop's log in one place.
"""

import os
import signal
import socket
import socketserver
import sys
import threading

PORT = int(os.environ.get("PORT", "5140"))
MAX_LINE = 4096  # bytes; longer lines are cut, so one client cannot grow memory

lock = threading.Lock()
kept = 0


def keep(peer, line):
    global kept
    with lock:
        kept += 1
        n = kept
        print(f"{n} {peer} {line}", flush=True)
    return n


class TCPHandler(socketserver.StreamRequestHandler):
    timeout = 30  # an idle client is dropped

    def handle(self):
        while True:
            raw = self.rfile.readline(MAX_LINE + 1)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "PING":
                self.wfile.write(b"PONG\n")
                continue
            n = keep(self.client_address[0], line)
            self.wfile.write(f"ok {n} {socket.gethostname()}\n".encode())


class UDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data = self.request[0][:MAX_LINE]
        keep(self.client_address[0], data.decode("utf-8", "replace").rstrip("\r\n"))


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    tcp = TCPServer(("0.0.0.0", PORT), TCPHandler)
    udp = socketserver.ThreadingUDPServer(("0.0.0.0", PORT), UDPHandler)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"log {socket.gethostname()} listening on :{PORT} (TCP and UDP)", flush=True)
    tcp.serve_forever()


if __name__ == "__main__":
    main()
