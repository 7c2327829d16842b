package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// stopped is what the network tests read back of a stop: when SIGTERM
// came, and how much was served after it (the mesh and DNS must have sent
// nothing new by then).
var stopped struct {
	at        atomic.Int64 // Unix nanoseconds; 0 until the signal
	httpAfter atomic.Int64
	udpAfter  atomic.Int64
}

// stopRecord is the file RECORD_DIR/<hostname>.json.
type stopRecord struct {
	Host string `json:"host"`
	// SigtermAt is when the signal came (Unix nanoseconds).
	SigtermAt int64 `json:"sigterm_at"`
	// Addrs are this container's own IPv4 addresses.
	Addrs []string `json:"addrs"`
	// Lookups are the SIGTERM_LOOKUP names' answers right after the
	// signal, from this container's resolver ("error: ..." when none).
	Lookups map[string][]string `json:"lookups,omitempty"`
	// HTTPAfter and UDPAfter count requests and datagrams (health checks
	// aside) that came after the signal; Final is set once LINGER ended.
	HTTPAfter int64 `json:"http_after"`
	UDPAfter  int64 `json:"udp_after"`
	Final     bool  `json:"final"`
}

// serve runs the HTTP server (and the UDP, sink and echo listeners asked
// for) until SIGTERM or SIGINT, then exits 0 so tests can tell a graceful
// stop from a kill (137).
func serve() error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	ln, err := net.Listen("tcp", ":"+port())
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: countAfterStop(routes()), ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	errc := make(chan error, 4)
	go func() { errc <- srv.Serve(proxyListener{ln}) }()
	if err := startListeners(errc); err != nil {
		return err
	}
	fmt.Println("listening on :" + port())
	var sig os.Signal
	select {
	case err := <-errc:
		return err
	case sig = <-sigs:
	}
	if sig == syscall.SIGTERM && (os.Getenv("RECORD_DIR") != "" || os.Getenv("LINGER") != "") {
		onSigterm()
	}
	fmt.Println("signal received, shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// onSigterm notes the signal, keeps serving for LINGER (so a request the
// mesh still sent would be served and counted, not refused), and writes
// the record at once and again at the end.
func onSigterm() {
	now := time.Now()
	stopped.at.Store(now.UnixNano())
	fmt.Println("got SIGTERM at " + now.UTC().Format(time.RFC3339Nano))
	host, _ := os.Hostname()
	rec := stopRecord{Host: host, SigtermAt: now.UnixNano(), Addrs: ownAddrs(), Lookups: map[string][]string{}}
	for _, name := range strings.Split(os.Getenv("SIGTERM_LOOKUP"), ",") {
		if name = strings.TrimSpace(name); name != "" {
			rec.Lookups[name] = lookupOnce(name)
		}
	}
	writeRecord(rec)
	linger, _ := time.ParseDuration(os.Getenv("LINGER"))
	time.Sleep(min(linger, time.Minute)) // the point of LINGER: stay up after the signal
	rec.HTTPAfter, rec.UDPAfter, rec.Final = stopped.httpAfter.Load(), stopped.udpAfter.Load(), true
	writeRecord(rec)
	fmt.Printf("served after SIGTERM: %d requests, %d datagrams\n", rec.HTTPAfter, rec.UDPAfter)
}

func lookupOnce(name string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := resolver.LookupHost(ctx, name)
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	return addrs
}

func ownAddrs() []string {
	var out []string
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if ip, ok := a.(*net.IPNet); ok && ip.IP.To4() != nil && !ip.IP.IsLoopback() {
			out = append(out, ip.IP.String())
		}
	}
	return out
}

// writeRecord replaces the record whole (temp file and rename), so a
// reader never sees half of one.
func writeRecord(rec stopRecord) {
	dir := os.Getenv("RECORD_DIR")
	if dir == "" {
		return
	}
	b, _ := json.Marshal(rec)
	tmp := filepath.Join(dir, "."+rec.Host+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "app: record:", err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(dir, rec.Host+".json")); err != nil {
		fmt.Fprintln(os.Stderr, "app: record:", err)
	}
}

func countAfterStop(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" && stopped.at.Load() != 0 {
			stopped.httpAfter.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

type connKey struct{}

// whoami is /whoami's answer.
type whoami struct {
	Host    string `json:"host"`
	Message string `json:"message,omitempty"`
	// Remote is the peer of the connection; Client the address a PROXY v2
	// header named ("" without one).
	Remote string `json:"remote"`
	Client string `json:"client,omitempty"`
	// At is when this replica handled the request (Unix nanoseconds).
	At int64 `json:"at"`
}

func handleWhoami(w http.ResponseWriter, r *http.Request) {
	if unhealthy() {
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		return
	}
	host, _ := os.Hostname()
	a := whoami{Host: host, Message: os.Getenv("MESSAGE"), Remote: r.RemoteAddr, At: time.Now().UnixNano()}
	if c, ok := r.Context().Value(connKey{}).(*proxyConn); ok {
		a.Client = c.proxyClient()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// startListeners opens the UDP echo, the TCP sink and the TCP echo that
// the environment asks for.
func startListeners(errc chan<- error) error {
	if p := os.Getenv("UDP_PORT"); p != "" {
		pc, err := net.ListenPacket("udp", ":"+p)
		if err != nil {
			return err
		}
		go func() { errc <- udpEcho(pc) }()
	}
	for env, handle := range map[string]func(net.Conn){"SINK_PORT": sink, "ECHO_PORT": echo} {
		if p := os.Getenv(env); p != "" {
			ln, err := net.Listen("tcp", ":"+p)
			if err != nil {
				return err
			}
			go func() { errc <- acceptLoop(ln, handle) }()
		}
	}
	return nil
}

// udpEcho answers each datagram with "HOST CLIENT PEER PAYLOAD", CLIENT
// the address of a PROXY v2 header in front of it (else "-"), PEER the
// datagram's source.
func udpEcho(pc net.PacketConn) error {
	host, _ := os.Hostname()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		if stopped.at.Load() != 0 {
			stopped.udpAfter.Add(1)
		}
		payload, client := buf[:n], "-"
		if src, hl, ok, err := parseProxyV2(payload); ok && err == nil {
			payload, client = payload[hl:], src
		}
		reply := append([]byte(host+" "+client+" "+from.String()+" "), payload...)
		_, _ = pc.WriteTo(reply, from)
	}
}

func acceptLoop(ln net.Listener, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(c)
	}
}

// sink reads until the sender closes its side, then answers the count of
// bytes it read, so the sender knows every byte arrived.
func sink(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := c.Read(buf)
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	fmt.Fprintf(c, "%d\n", total)
}

// echo writes back what it reads, as it reads it.
func echo(c net.Conn) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
