// Command app is berth's test workload: a static HTTP server small enough to
// live in a FROM scratch image, with endpoints that let tests probe naming,
// reachability, secrets, health and exit codes from inside a task.
//
// Environment: PORT (default 8080), MESSAGE (echoed by / and /whoami),
// UNHEALTHY_FILE (/health fails while it exists), MODE=oneshot with
// EXIT_CODE (print a line and exit). For the network tests (serve.go):
// UDP_PORT (a UDP echo), SINK_PORT and ECHO_PORT (a TCP byte sink and a
// TCP echo, for throughput and latency), LINGER (keep serving this long
// after SIGTERM), RECORD_DIR (write what the app saw at SIGTERM there) and
// SIGTERM_LOOKUP (names to resolve at SIGTERM, comma separated).
//
// Subcommands: "app healthcheck" probes /health for images without a
// shell; "app touch FILE" makes a file (UNHEALTHY_FILE in an image with no
// shell); the clients of client.go and bench.go ("app get", "app udp",
// "app lookup", "app watch", "app send", "app rr") each run a bounded loop
// and print one JSON line of counts.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "healthcheck" {
			os.Exit(healthcheck())
		}
		if run, ok := clients[os.Args[1]]; ok {
			if err := run(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "app "+os.Args[1]+":", err)
				os.Exit(2)
			}
			return
		}
	}
	if os.Getenv("MODE") == "oneshot" {
		fmt.Println("oneshot: done")
		code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
		os.Exit(code)
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(1)
	}
}

func port() string {
	if p := os.Getenv("PORT"); p != "" {
		return p
	}
	return "8080"
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", handleRoot)
	mux.HandleFunc("/whoami", handleWhoami)
	mux.HandleFunc("/health", handleHealth)
	mux.HandleFunc("/lookup", handleLookup)
	mux.HandleFunc("/get", handleGet)
	mux.HandleFunc("/file", handleFile)
	mux.HandleFunc("/exit", handleExit)
	return mux
}

func handleRoot(w http.ResponseWriter, _ *http.Request) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "%s %s\n", host, os.Getenv("MESSAGE"))
}

func handleHealth(w http.ResponseWriter, _ *http.Request) {
	if unhealthy() {
		http.Error(w, "unhealthy", http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, "ok")
}

// unhealthy reports whether UNHEALTHY_FILE exists: /health fails, and so
// does /whoami, as a broken replica's answers would.
func unhealthy() bool {
	f := os.Getenv("UNHEALTHY_FILE")
	if f == "" {
		return false
	}
	_, err := os.Stat(f)
	return err == nil
}

func handleLookup(w http.ResponseWriter, r *http.Request) {
	addrs, err := net.DefaultResolver.LookupHost(r.Context(), r.URL.Query().Get("host"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(addrs)
}

func handleGet(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL.Query().Get("url"), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func handleFile(w http.ResponseWriter, r *http.Request) {
	b, err := os.ReadFile(r.URL.Query().Get("path"))
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	_, _ = w.Write(b)
}

// handleExit answers first, then exits, so the caller sees the request
// succeed and the task's exit code is the one asked for.
func handleExit(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil {
		http.Error(w, "code must be an integer", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "exiting with %d\n", code)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	go func() {
		time.Sleep(100 * time.Millisecond) // let the response reach the client
		os.Exit(code)
	}()
}

func healthcheck() int {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port() + "/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "health:", resp.Status)
		return 1
	}
	return 0
}
