package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// resolver is Go's own, as in a FROM scratch image: the container's
// /etc/resolv.conf, nothing of the host's libc.
var resolver = &net.Resolver{PreferGo: true}

// clients are the subcommands that run a bounded loop and print one JSON
// line of what they saw.
var clients = map[string]func(args []string) error{
	"get":    runGet,
	"udp":    runUDP,
	"lookup": runLookup,
	"watch":  runWatch,
	"touch":  runTouch,
	"send":   runSend,
	"rr":     runRR,
}

// Bounds of every loop, whatever the flags say.
const (
	maxCount    = 1_000_000
	maxDuration = 10 * time.Minute
	maxErrors   = 10 // distinct error texts kept; the rest count as "other"
)

// loop is the flags every client shares: at most n rounds, for at most d,
// interval apart, until the stop file exists; the mark file is made once
// a round succeeded (a test's sign that the loop is under way).
type loop struct {
	n        int
	d        time.Duration
	interval time.Duration
	stop     string
	mark     string
	marked   bool
	start    time.Time
}

func (l *loop) ok() {
	if l.mark != "" && !l.marked {
		l.marked = true
		_ = os.WriteFile(l.mark, nil, 0o644)
	}
}

func (l *loop) flags(fs *flag.FlagSet, n int, d time.Duration) {
	fs.IntVar(&l.n, "n", n, "at most this many rounds")
	fs.DurationVar(&l.d, "d", d, "for at most this long")
	fs.DurationVar(&l.interval, "interval", 0, "pause between rounds")
	fs.StringVar(&l.stop, "stop", "", "end early once this file exists")
	fs.StringVar(&l.mark, "mark", "", "make this file once a round succeeded")
}

// next reports whether round i may run, pausing interval first.
func (l *loop) next(i int) bool {
	if i == 0 {
		l.start = time.Now()
	} else if l.interval > 0 {
		time.Sleep(l.interval)
	}
	if i >= min(l.n, maxCount) || time.Since(l.start) >= min(l.d, maxDuration) {
		return false
	}
	if l.stop != "" {
		if _, err := os.Stat(l.stop); err == nil {
			return false
		}
	}
	return true
}

// errCount counts errors by text, keeping at most maxErrors texts.
type errCount map[string]int

func (e errCount) add(err error) {
	s := err.Error()
	if _, ok := e[s]; !ok && len(e) >= maxErrors {
		s = "other"
	}
	e[s]++
}

func printJSON(v any) error { return json.NewEncoder(os.Stdout).Encode(v) }

// getResult is what `app get` prints.
type getResult struct {
	OK       int              `json:"ok"`
	Failed   int              `json:"failed"`
	By       map[string]int   `json:"by"`                 // answering host -> count
	Messages map[string]int   `json:"messages,omitempty"` // MESSAGE -> count
	Clients  map[string]int   `json:"clients,omitempty"`  // PROXY v2 client -> count
	Remotes  map[string]int   `json:"remotes,omitempty"`  // peer IP the replica saw -> count
	First    map[string]int64 `json:"first"`              // host -> its first answer's time (its clock)
	Last     map[string]int64 `json:"last"`               // host -> its last answer's time
	Errors   errCount         `json:"errors,omitempty"`
	// FailFirst and FailLast bound when requests failed (this side's
	// clock, Unix nanoseconds; 0 when none did).
	FailFirst int64   `json:"fail_first,omitempty"`
	FailLast  int64   `json:"fail_last,omitempty"`
	Resolved  string  `json:"resolved,omitempty"` // with -once: the address used
	Secs      float64 `json:"secs"`
}

// runGet: app get URL [-n N] [-d D] [-interval I] [-timeout T] [-once]
// [-stop FILE] [-mark FILE [-mark-hosts K]]. One new connection per request, so each one is balanced
// afresh. A URL answering /whoami's JSON is counted by answering host.
func runGet(args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	var l loop
	l.flags(fs, 100, 30*time.Second)
	timeout := fs.Duration("timeout", 2*time.Second, "bound of one request")
	once := fs.Bool("once", false, "resolve the URL's host once, first, and use that address throughout")
	markHosts := fs.Int("mark-hosts", 1, "make the mark file once this many hosts answered")
	if len(args) < 1 {
		return errors.New("usage: app get URL [flags]")
	}
	u, err := url.Parse(args[0])
	if err != nil {
		return err
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	res := getResult{By: map[string]int{}, Messages: map[string]int{}, Clients: map[string]int{}, Remotes: map[string]int{},
		First: map[string]int64{}, Last: map[string]int64{}, Errors: errCount{}}
	if *once {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		addrs, err := resolver.LookupHost(ctx, u.Hostname())
		cancel()
		if err != nil || len(addrs) == 0 {
			return fmt.Errorf("resolve %s: %v", u.Hostname(), err)
		}
		res.Resolved = addrs[0]
		u.Host = net.JoinHostPort(addrs[0], u.Port())
	}
	c := &http.Client{Timeout: *timeout, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
		DialContext: (&net.Dialer{Resolver: resolver, Timeout: *timeout}).DialContext}}
	for i := 0; l.next(i); i++ {
		a, err := getOnce(c, u.String())
		if err != nil {
			res.Failed++
			res.Errors.add(err)
			res.FailLast = time.Now().UnixNano()
			if res.FailFirst == 0 {
				res.FailFirst = res.FailLast
			}
			continue
		}
		res.OK++
		res.By[a.Host]++
		if len(res.By) >= *markHosts {
			l.ok()
		}
		if a.Message != "" {
			res.Messages[a.Message]++
		}
		if a.Client != "" {
			res.Clients[a.Client]++
		}
		if a.Remote != "" {
			res.Remotes[peerIP(a.Remote)]++
		}
		if _, ok := res.First[a.Host]; !ok {
			res.First[a.Host] = a.At
		}
		res.Last[a.Host] = a.At
	}
	res.Secs = time.Since(l.start).Seconds()
	return printJSON(res)
}

func getOnce(c *http.Client, u string) (whoami, error) {
	resp, err := c.Get(u)
	if err != nil {
		return whoami{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return whoami{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return whoami{}, fmt.Errorf("status %s", resp.Status)
	}
	var a whoami
	if json.Unmarshal(b, &a) != nil {
		// Not /whoami: the first word of / is the host.
		a.Host, _, _ = strings.Cut(strings.TrimSpace(string(b)), " ")
	}
	return a, nil
}

// peerIP is the host part of "ip:port", the whole of anything else.
func peerIP(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// udpResult is what `app udp` prints.
type udpResult struct {
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	By      map[string]int `json:"by"`
	Clients map[string]int `json:"clients,omitempty"`
	Peers   map[string]int `json:"peers,omitempty"` // source IP the echo saw -> count
	Errors  errCount       `json:"errors,omitempty"`
}

// runUDP: app udp HOST:PORT [-n N] [-timeout T] [-new]: sends datagrams
// to the echo and waits for each answer. -new uses a new socket (a new
// flow) for each.
func runUDP(args []string) error {
	fs := flag.NewFlagSet("udp", flag.ContinueOnError)
	var l loop
	l.flags(fs, 20, 30*time.Second)
	timeout := fs.Duration("timeout", time.Second, "wait for each answer")
	fresh := fs.Bool("new", false, "a new socket for each datagram")
	if len(args) < 1 {
		return errors.New("usage: app udp HOST:PORT [flags]")
	}
	addr := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	res := udpResult{By: map[string]int{}, Clients: map[string]int{}, Peers: map[string]int{}, Errors: errCount{}}
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	buf := make([]byte, 65536)
	for i := 0; l.next(i); i++ {
		if conn == nil || *fresh {
			if conn != nil {
				conn.Close()
			}
			d := net.Dialer{Resolver: resolver, Timeout: *timeout}
			c, err := d.Dial("udp", addr)
			if err != nil {
				conn = nil
				res.Failed++
				res.Errors.add(err)
				continue
			}
			conn = c
		}
		payload := fmt.Sprintf("ping-%d", i)
		_ = conn.SetDeadline(time.Now().Add(*timeout))
		if _, err := conn.Write([]byte(payload)); err != nil {
			res.Failed++
			res.Errors.add(err)
			continue
		}
		n, err := conn.Read(buf)
		if err != nil {
			res.Failed++
			res.Errors.add(err)
			continue
		}
		f := strings.SplitN(string(buf[:n]), " ", 4)
		if len(f) != 4 || f[3] != payload {
			res.Failed++
			res.Errors.add(fmt.Errorf("answer %q to %q", buf[:n], payload))
			continue
		}
		res.OK++
		l.ok()
		res.By[f[0]]++
		if f[1] != "-" {
			res.Clients[f[1]]++
		}
		res.Peers[peerIP(f[2])]++
	}
	return printJSON(res)
}

// lookupResult is what `app lookup` prints.
type lookupResult struct {
	Addrs    []string `json:"addrs,omitempty"`
	Error    string   `json:"error,omitempty"`
	NotFound bool     `json:"not_found,omitempty"`
}

// runLookup: app lookup NAME: the addresses, or the error (NotFound for
// NXDOMAIN).
func runLookup(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: app lookup NAME")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	addrs, err := resolver.LookupHost(ctx, args[0])
	res := lookupResult{Addrs: addrs}
	if err != nil {
		res.Error = err.Error()
		var de *net.DNSError
		res.NotFound = errors.As(err, &de) && de.IsNotFound
	}
	return printJSON(res)
}

// watchResult is what `app watch` prints: for each address an answer
// held, when it was first and last seen (this side's clock, once the
// answer arrived).
type watchResult struct {
	OK     int              `json:"ok"`
	Failed int              `json:"failed"`
	First  map[string]int64 `json:"first"`
	Last   map[string]int64 `json:"last"`
	Errors errCount         `json:"errors,omitempty"`
}

// runWatch: app watch NAME [-n N] [-d D] [-interval I] [-stop FILE].
func runWatch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	var l loop
	l.flags(fs, 10000, 30*time.Second)
	if len(args) < 1 {
		return errors.New("usage: app watch NAME [flags]")
	}
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	res := watchResult{First: map[string]int64{}, Last: map[string]int64{}, Errors: errCount{}}
	for i := 0; l.next(i); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		addrs, err := resolver.LookupHost(ctx, name)
		cancel()
		if err != nil {
			res.Failed++
			res.Errors.add(err)
			continue
		}
		res.OK++
		l.ok()
		now := time.Now().UnixNano()
		for _, a := range addrs {
			if _, ok := res.First[a]; !ok {
				res.First[a] = now
			}
			res.Last[a] = now
		}
	}
	return printJSON(res)
}

// runTouch: app touch FILE (an image with no shell has no touch).
func runTouch(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: app touch FILE")
	}
	return os.WriteFile(args[0], nil, 0o644)
}
