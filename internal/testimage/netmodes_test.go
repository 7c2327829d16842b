package testimage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startApp runs the app binary with env and returns it once PORT answers.
func startApp(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := AppBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The port was free a moment ago; on a busy machine another process
	// can take it before the app binds it, and the app exits: then it is
	// started again on another. (Its exit is seen without reaping it:
	// the tests Wait for it themselves.)
	for try := 0; ; try++ {
		port := freePort(t)
		cmd := exec.Command(bin)
		cmd.Env = append(append(os.Environ(), "PORT="+port), env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for !exitedUnreaped(cmd.Process.Pid) {
			resp, err := http.Get("http://127.0.0.1:" + port + "/health")
			if err == nil {
				resp.Body.Close()
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				return cmd, port
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("GET :%s/health: %v", port, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = cmd.Wait()
		if try == 4 {
			t.Fatalf("the app exited at start on 5 ports in a row")
		}
	}
}

// exitedUnreaped reports whether process pid has exited, leaving it for
// its Wait.
func exitedUnreaped(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil && info.Signo != 0
}

// runClient runs an app subcommand and decodes its JSON line into v.
func runClient(t *testing.T, v any, args ...string) {
	t.Helper()
	bin, err := AppBinary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("app %v: %v", args, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("app %v: %v: %s", args, err, out)
	}
}

// proxyV2 is a PROXY protocol v2 header (TCP over IPv4) naming src.
func proxyV2(src string, srcPort uint16) []byte {
	h := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	h = append(h, net.ParseIP(src).To4()...)
	h = append(h, 127, 0, 0, 1)
	h = binary.BigEndian.AppendUint16(h, srcPort)
	return binary.BigEndian.AppendUint16(h, 8080)
}

func TestAppWhoamiReadsProxyV2(t *testing.T) {
	_, port := startApp(t, "MESSAGE=m1")
	for _, tc := range []struct {
		name   string
		header []byte
		client string
	}{
		{"plain", nil, ""},
		{"proxy v2", proxyV2("203.0.113.7", 40001), "203.0.113.7:40001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			req := append(tc.header, "GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"...)
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(c)
			_, body, _ := strings.Cut(string(b), "\r\n\r\n")
			var w struct{ Host, Message, Remote, Client string }
			if err := json.Unmarshal([]byte(body), &w); err != nil {
				t.Fatalf("%v: %q", err, b)
			}
			if w.Client != tc.client || w.Message != "m1" || !strings.HasPrefix(w.Remote, "127.0.0.1:") || w.Host == "" {
				t.Fatalf("whoami %+v, want client %q, message m1, remote 127.0.0.1", w, tc.client)
			}
		})
	}
}

func TestAppClientsCountWhatTheySee(t *testing.T) {
	udp, sinkPort, echoPort := freeUDPPort(t), freePort(t), freePort(t)
	_, port := startApp(t, "UDP_PORT="+udp, "SINK_PORT="+sinkPort, "ECHO_PORT="+echoPort)
	var get struct {
		OK, Failed int
		By         map[string]int
	}
	runClient(t, &get, "get", "http://127.0.0.1:"+port+"/whoami", "-n", "20")
	if get.OK != 20 || get.Failed != 0 || len(get.By) != 1 {
		t.Fatalf("get: %+v, want 20 ok from one host", get)
	}
	runClient(t, &get, "get", "http://127.0.0.1:"+freePort(t)+"/whoami", "-n", "3", "-timeout", "1s")
	if get.OK != 0 || get.Failed != 3 {
		t.Fatalf("get of a closed port: %+v, want 3 failed", get)
	}
	var u struct{ OK, Failed int }
	runClient(t, &u, "udp", "127.0.0.1:"+udp, "-n", "10", "-new")
	if u.OK != 10 || u.Failed != 0 {
		t.Fatalf("udp: %+v, want 10 echoed", u)
	}
	var s struct {
		Bytes, Acked int64
	}
	runClient(t, &s, "send", "127.0.0.1:"+sinkPort, "-d", "200ms")
	if s.Bytes == 0 || s.Acked != s.Bytes {
		t.Fatalf("send: %+v, want every byte acknowledged", s)
	}
	var rr struct {
		Count int
		P50   float64 `json:"p50_us"`
	}
	runClient(t, &rr, "rr", "127.0.0.1:"+echoPort, "-n", "50", "-rate", "500")
	if rr.Count != 50 || rr.P50 <= 0 {
		t.Fatalf("rr: %+v", rr)
	}
	var l struct {
		Addrs    []string
		NotFound bool `json:"not_found"`
	}
	runClient(t, &l, "lookup", "localhost")
	if len(l.Addrs) == 0 {
		t.Fatalf("lookup localhost: %+v", l)
	}
}

func TestAppRecordsSigterm(t *testing.T) {
	dir := t.TempDir()
	cmd, port := startApp(t, "RECORD_DIR="+dir, "LINGER=2s", "SIGTERM_LOOKUP=localhost")
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	var rec struct {
		SigtermAt int64 `json:"sigterm_at"`
		HTTPAfter int64 `json:"http_after"`
		Final     bool
		Lookups   map[string][]string
	}
	deadline := time.Now().Add(10 * time.Second)
	asked := false
	for !rec.Final {
		if time.Now().After(deadline) {
			t.Fatalf("no final record in %s: %+v", dir, rec)
		}
		b, err := os.ReadFile(filepath.Join(dir, host+".json"))
		if err == nil {
			_ = json.Unmarshal(b, &rec)
			if !asked && !rec.Final { // while it lingers, a request is served and counted
				waitGet(t, "http://127.0.0.1:"+port+"/whoami")
				asked = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec.SigtermAt < sent.UnixNano() || rec.HTTPAfter != 1 || len(rec.Lookups["localhost"]) == 0 {
		t.Fatalf("record %+v: want the signal's time after %d, 1 request after it, localhost's addresses", rec, sent.UnixNano())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want 0", err)
	}
}

func freeUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_, p, _ := net.SplitHostPort(pc.LocalAddr().String())
	return p
}
