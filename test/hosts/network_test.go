package hosts

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/types"
	h "github.com/berth-dev/berth/test/e2e/harness"
)

// getResult and the others are what the test app's clients print
// (internal/testimage/app/client.go).
type getResult struct {
	OK        int              `json:"ok"`
	Failed    int              `json:"failed"`
	By        map[string]int   `json:"by"`
	Messages  map[string]int   `json:"messages"`
	Clients   map[string]int   `json:"clients"`
	Remotes   map[string]int   `json:"remotes"`
	First     map[string]int64 `json:"first"`
	Last      map[string]int64 `json:"last"`
	Errors    map[string]int   `json:"errors"`
	FailFirst int64            `json:"fail_first"`
	FailLast  int64            `json:"fail_last"`
	Resolved  string           `json:"resolved"`
	Secs      float64          `json:"secs"`
}

type lookupResult struct {
	Addrs    []string `json:"addrs"`
	Error    string   `json:"error"`
	NotFound bool     `json:"not_found"`
}

type watchResult struct {
	OK     int              `json:"ok"`
	Failed int              `json:"failed"`
	First  map[string]int64 `json:"first"`
	Last   map[string]int64 `json:"last"`
	Errors map[string]int   `json:"errors"`
}

type udpResult struct {
	OK      int            `json:"ok"`
	Failed  int            `json:"failed"`
	By      map[string]int `json:"by"`
	Clients map[string]int `json:"clients"`
	Peers   map[string]int `json:"peers"`
	Errors  map[string]int `json:"errors"`
}

const webURL = "http://web.:8080/whoami" // a trailing dot: no search domain, only berth's names

// TestNetworkAcrossHosts is issue 17's proof on hosts with engines of
// their own: service names, VIPs, health, drain, the routing mesh with the
// client's address, isolation and UDP, across hosts. Names end in a dot
// and are all berth's own, so no query leaves berth's DNS for the
// machine's resolvers; traffic goes only between the test's hosts.
func TestNetworkAcrossHosts(t *testing.T) {
	needHosts(t)
	img := h.TestImage(t)
	n := newNetCluster(t, "bn")
	n.up(t, netApp, netCompose(img, n.dir, "v1", webReplicas))
	n.up(t, otherApp, otherCompose(img, n.dir))
	for _, w := range []struct {
		app, svc, key string
		n             int
		on            []string
	}{
		{netApp, "client", frontKey, 1, []string{"a1"}},
		{netApp, "web", frontKey, webReplicas, []string{"a2", "a3"}},
		{netApp, "webrr", frontKey, 2, []string{"a2", "a3"}},
		{netApp, "pub", frontKey, 1, []string{"a2"}},
		{netApp, "publocal", frontKey, 1, []string{"a2"}},
		{netApp, "backonly", backKey, 1, []string{"a2"}},
		{otherApp, "other", otherKey, 1, []string{"a3"}},
	} {
		h.WaitFor(t, time.Minute, w.svc+" serving with an overlay address", n.serving(w.app, w.svc, w.n, w.key, w.on...))
	}
	client := n.tasks(t, netApp, "client")[0]
	berthResolvers(t, n, client)
	berthResolvers(t, n, n.tasks(t, otherApp, "other")[0])
	var vip string

	t.Run("a: a client on a1 calls web on a2 and a3 by its VIP and by its replicas' names", func(t *testing.T) {
		web := n.tasks(t, netApp, "web")
		var l lookupResult
		n.must(t, client, 10*time.Second, &l, "lookup", "web.")
		if len(l.Addrs) != 1 || !inPool(l.Addrs) || slices.Contains(taskAddrs(web, frontKey), l.Addrs[0]) {
			t.Fatalf("web. = %+v, want one VIP in %s that is no replica's address (replicas %v)", l, clusterPool, taskAddrs(web, frontKey))
		}
		vip = l.Addrs[0]
		var g getResult
		n.must(t, client, time.Minute, &g, "get", webURL, "-n", "60")
		byHost := hostnames(web)
		if g.OK != 60 || g.Failed != 0 || len(g.By) < 2 {
			t.Fatalf("60 requests to web by its VIP: %d ok, %d failed %v, answered by %v; want all ok, balanced over 2 or more replicas", g.OK, g.Failed, g.Errors, g.By)
		}
		for host := range g.By {
			if byHost[host] == nil {
				t.Errorf("%s answered for web: no running web replica has that hostname (%v)", host, slices.Collect(maps.Keys(byHost)))
			}
		}
		t.Logf("web by VIP %s: %v; the replicas saw the peers %v (client %s)", vip, g.By, g.Remotes, client.Addresses[frontKey])

		wantSet(t, n, client, "tasks.web.", taskAddrs(web, frontKey))
		wantSet(t, n, client, "webrr.", taskAddrs(n.tasks(t, netApp, "webrr"), frontKey))
		wantSet(t, n, client, "1.web.", []string{web[0].Addresses[frontKey]})
		n.must(t, client, time.Minute, &g, "get", "http://webrr.:8080/whoami", "-n", "20")
		if g.OK != 20 || g.Failed != 0 {
			t.Errorf("20 requests to webrr (dnsrr) by name: %d ok, %d failed %v", g.OK, g.Failed, g.Errors)
		}
		// By address, across hosts: the overlay itself.
		for _, tk := range web {
			n.must(t, client, 20*time.Second, &g, "get", "http://"+tk.Addresses[frontKey]+":8080/whoami", "-n", "3")
			if g.OK != 3 || g.By[tk.ContainerID[:12]] != 3 {
				t.Errorf("client on a1 to %s on %s at %s: %+v, want 3 answers from it", tk.Name(), n.hosts[tk.NodeID], tk.Addresses[frontKey], g)
			}
		}
	})

	t.Run("b: a killed or unhealthy replica gets no request once berth knows it", func(t *testing.T) {
		web := n.tasks(t, netApp, "web")
		victim := n.on(t, web, "a2")
		if _, err := n.docker("a2", 30*time.Second, "kill", victim.ContainerID); err != nil {
			t.Fatal(err)
		}
		h.WaitFor(t, 30*time.Second, "the cluster sees "+victim.Name()+" dead", n.notRunning(victim.ID))
		noneFail(t, n, client, "after the kill of "+victim.Name(), 100)
		h.WaitFor(t, time.Minute, "web back to 3 healthy replicas", n.serving(netApp, "web", webReplicas, frontKey, "a2", "a3"))

		web = n.tasks(t, netApp, "web")
		sick := n.on(t, web, "a3")
		before := n.records(t)
		if err := n.run(sick, 20*time.Second, nil, "touch", "/unhealthy"); err != nil {
			t.Fatal(err)
		}
		h.WaitFor(t, 30*time.Second, "the cluster sees "+sick.Name()+" unhealthy", n.unhealthy(sick.ID))
		noneFail(t, n, client, "with "+sick.Name()+" unhealthy (its /whoami fails too)", 100)
		h.WaitFor(t, time.Minute, "web back to 3 healthy replicas", n.serving(netApp, "web", webReplicas, frontKey, "a2", "a3"))
		var recs []stopRecord
		h.WaitFor(t, 30*time.Second, "the unhealthy replica's stop", n.newFinalRecords(t, before, 1, &recs))
	})

	t.Run("c: scale down during a request loop fails no request", func(t *testing.T) {
		before := n.records(t)
		var g getResult
		wait := n.background(client, 2*time.Minute, &g, "get", webURL, "-n", "20000", "-d", "90s", "-interval", "5ms",
			"-stop", "/rec/stop-c", "-mark", "/rec/mark-c", "-mark-hosts", "3")
		h.WaitFor(t, 30*time.Second, "the loop answered by the 3 replicas", n.exists("mark-c"))
		n.c.must(t, "scale", "-p", netApp, "web=2")
		var recs []stopRecord
		h.WaitFor(t, time.Minute, "the removed replica stopped", n.newFinalRecords(t, before, 1, &recs))
		n.touch(t, "stop-c")
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		t.Logf("loop through the scale down: %d ok in %.1fs, by %v", g.OK, g.Secs, g.By)
		if g.Failed != 0 || g.OK == 0 || g.By[recs[0].Host] == 0 {
			t.Fatalf("%d ok, %d failed %v, %d from the removed %s; want 0 failed and the removed replica answering before it left",
				g.OK, g.Failed, g.Errors, g.By[recs[0].Host], recs[0].Host)
		}
	})

	t.Run("d: a published port answers on nodes without a replica, with the client's address in PROXY v2", func(t *testing.T) {
		pub := n.tasks(t, netApp, "pub")[0]
		for _, host := range []string{"a1", "a3", "a2"} {
			addr := net.JoinHostPort(n.addrs[host], strconv.Itoa(pubTCP))
			w, local, err := whoamiAt(addr)
			if err != nil {
				t.Errorf("GET %s (node %s): %v", addr, host, err)
				continue
			}
			if w.Host != pub.ContainerID[:12] || w.Client != local {
				t.Errorf("GET %s (node %s): %+v; want pub's replica %s and the PROXY v2 client %s (this side's address)", addr, host, w, pub.ContainerID[:12], local)
			}
		}
		for _, host := range []string{"a1", "a3"} {
			addr := net.JoinHostPort(n.addrs[host], strconv.Itoa(pubUDP))
			reply, local, err := udpEchoAt(addr, "ping")
			f := strings.Fields(reply)
			if err != nil || len(f) != 4 || f[0] != pub.ContainerID[:12] || f[1] != local || f[3] != "ping" {
				t.Errorf("UDP to %s (node %s): %q (host, PROXY v2 client, peer, payload), %v; want pub's replica %s and the client %s",
					addr, host, reply, err, pub.ContainerID[:12], local)
			}
		}
	})

	t.Run("d2: with x-berth-mesh: local only a node with a replica answers", func(t *testing.T) {
		local := n.tasks(t, netApp, "publocal")[0]
		addr := net.JoinHostPort(n.addrs["a2"], strconv.Itoa(pubLocal))
		w, from, err := whoamiAt(addr)
		if err != nil || w.Host != local.ContainerID[:12] {
			t.Errorf("GET %s (node a2, the replica's): %+v, %v; want publocal's replica %s", addr, w, err, local.ContainerID[:12])
		}
		// docs/cli.md: "the client address is kept", with no PROXY header.
		if seen, _, _ := net.SplitHostPort(w.Remote); err == nil && seen != hostOf(from) {
			t.Errorf("publocal on a2 saw the peer %s; want the client's own address %s (x-berth-mesh: local keeps it)", w.Remote, hostOf(from))
		}
		for _, host := range []string{"a1", "a3"} {
			addr := net.JoinHostPort(n.addrs[host], strconv.Itoa(pubLocal))
			if w, _, err := whoamiAt(addr); err == nil {
				t.Errorf("GET %s (node %s, no replica): answered by %s; want no answer with x-berth-mesh: local", addr, host, w.Host)
			}
		}
	})

	t.Run("e: two networks of one app, and two apps, cannot reach each other across hosts", func(t *testing.T) {
		back := n.tasks(t, netApp, "backonly")[0]
		other := n.tasks(t, otherApp, "other")[0]
		unreachable(t, n, client, "backonly on nt's other network", back.Addresses[backKey])
		unreachable(t, n, client, "other of app nt2", other.Addresses[otherKey])
		for _, name := range []string{"backonly.", "other.", "other.nt2.", "tasks.backonly."} {
			notFound(t, n, client, name)
		}
		notFound(t, n, other, "web.")
		if vip != "" {
			unreachable(t, n, other, "nt's web VIP", vip)
		}
		unreachable(t, n, other, "nt's web replica", n.tasks(t, netApp, "web")[0].Addresses[frontKey])
	})

	t.Run("f: UDP echo across hosts, by VIP and by address", func(t *testing.T) {
		web := hostnames(n.tasks(t, netApp, "web"))
		var u udpResult
		n.must(t, client, time.Minute, &u, "udp", "web.:"+strconv.Itoa(appUDPPort), "-n", "20", "-new")
		if u.OK != 20 || u.Failed != 0 {
			t.Errorf("20 datagrams to web's VIP, each a new flow: %+v", u)
		}
		for host := range u.By {
			if web[host] == nil {
				t.Errorf("UDP answer from %s, not a web replica", host)
			}
		}
		for _, tk := range web {
			n.must(t, client, time.Minute, &u, "udp", net.JoinHostPort(tk.Addresses[frontKey], strconv.Itoa(appUDPPort)), "-n", "5")
			if u.OK != 5 || u.By[tk.ContainerID[:12]] != 5 {
				t.Errorf("5 datagrams to %s on %s: %+v", tk.Name(), n.hosts[tk.NodeID], u)
			}
		}
	})

	t.Run("g: a stopping replica leaves DNS and the mesh before its SIGTERM", func(t *testing.T) {
		drainOrder(t, n, client)
	})

	t.Run("h: a client that resolved the VIP once works through a rollout", func(t *testing.T) {
		n.c.must(t, "scale", "-p", netApp, "web=3")
		h.WaitFor(t, time.Minute, "web at 3 healthy replicas", n.serving(netApp, "web", webReplicas, frontKey, "a2", "a3"))
		old := hostnames(n.tasks(t, netApp, "web"))
		before := n.records(t)
		var g getResult
		wait := n.background(client, 3*time.Minute, &g, "get", webURL, "-once", "-n", "50000", "-d", "150s", "-interval", "5ms",
			"-stop", "/rec/stop-h", "-mark", "/rec/mark-h")
		h.WaitFor(t, 30*time.Second, "the loop under way", n.exists("mark-h"))
		n.up(t, netApp, netCompose(img, n.dir, "v2", webReplicas))
		h.WaitFor(t, 2*time.Minute, "web rolled out", func() error {
			if err := n.serving(netApp, "web", webReplicas, frontKey, "a2", "a3")(); err != nil {
				return err
			}
			for host := range hostnames(n.tasks(t, netApp, "web")) {
				if old[host] != nil {
					return fmt.Errorf("old replica %s still runs", old[host].Name())
				}
			}
			return nil
		})
		n.touch(t, "stop-h")
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		t.Logf("loop through the rollout on %s: %d ok in %.1fs, messages %v", g.Resolved, g.OK, g.Secs, g.Messages)
		if g.Failed != 0 || g.Messages["v1"] == 0 || g.Messages["v2"] == 0 || (vip != "" && g.Resolved != vip) {
			t.Errorf("%d ok, %d failed %v, messages %v, on %s; want 0 failed, v1 then v2 answering on the VIP %s",
				g.OK, g.Failed, g.Errors, g.Messages, g.Resolved, vip)
			t.Logf("the rollout's timeline:\n%s", rolloutTimeline(t, n, before, g))
		}
	})

	t.Run("i: a version whose health check fails rolls back by itself, and the old one serves on through the VIP", func(t *testing.T) {
		var g getResult
		wait := n.background(client, 3*time.Minute, &g, "get", webURL, "-once", "-n", "50000", "-d", "150s", "-interval", "5ms",
			"-stop", "/rec/stop-i", "-mark", "/rec/mark-i")
		h.WaitFor(t, 30*time.Second, "the loop under way", n.exists("mark-i"))
		file := h.WriteFile(t, t.TempDir(), netApp+".yaml", failingWeb(netCompose(img, n.dir, "v3", webReplicas)))
		r := n.c.run(t, "up", "-p", netApp, "-f", file)
		if r.Code == 0 || !strings.Contains(r.Stderr, "rolled back") {
			t.Errorf("up of a version that never gets healthy: exit %d, want non-zero saying it was rolled back:\n%s", r.Code, r)
		}
		h.WaitFor(t, 2*time.Minute, "web back at 3 serving replicas", n.serving(netApp, "web", webReplicas, frontKey, "a2", "a3"))
		n.touch(t, "stop-i")
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		t.Logf("loop through the failed rollout: %d ok, %d failed, messages %v", g.OK, g.Failed, g.Messages)
		if g.Failed != 0 || g.Messages["v2"] == 0 || g.Messages["v3"] != 0 {
			t.Errorf("%d ok, %d failed %v, messages %v; want 0 failed and only v2 answering (v3 never healthy)", g.OK, g.Failed, g.Errors, g.Messages)
		}
	})
}

// failingWeb makes web's version in compose one whose health check never
// passes (UNHEALTHY_FILE names a path that always exists), rolled back by
// itself on failure.
func failingWeb(compose string) string {
	head, rest, _ := strings.Cut(compose, "  web:\n")
	web, tail, _ := strings.Cut(rest, "  webrr:\n")
	web = strings.Replace(web, "UNHEALTHY_FILE: /unhealthy", "UNHEALTHY_FILE: /", 1)
	web = strings.Replace(web, "deploy: {replicas:", "deploy: {update_config: {failure_action: rollback, monitor: 5s}, replicas:", 1)
	return head + "  web:\n" + web + "  webrr:\n" + tail
}

// rolloutTimeline says, from the first old replica's SIGTERM, when each
// old one got it, when each new one became healthy, and when requests
// failed: whether the replicas were replaced one by one.
func rolloutTimeline(t *testing.T, n *netCluster, before map[string]stopRecord, g getResult) string {
	var zero int64
	type event struct {
		at   int64
		what string
	}
	var evs []event
	for host, r := range n.records(t) {
		if _, ok := before[host]; !ok {
			evs = append(evs, event{r.SigtermAt, "old replica " + host + " got SIGTERM"})
		}
	}
	for _, tk := range n.tasks(t, netApp, "web") {
		evs = append(evs, event{tk.HealthyAt.UnixNano(), "new replica " + tk.Name() + " healthy"})
	}
	if g.FailFirst != 0 {
		evs = append(evs, event{g.FailFirst, "first request failed"}, event{g.FailLast, "last request failed"})
	}
	slices.SortFunc(evs, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	var b strings.Builder
	for _, e := range evs {
		if zero == 0 {
			zero = e.at
		}
		fmt.Fprintf(&b, "  %+8.3fs %s\n", float64(e.at-zero)/1e9, e.what)
	}
	return b.String()
}

// berthResolvers fails the test unless the task's container resolves
// through berth's DNS only (addresses in the cluster's pool): otherwise
// the DNS checks would send queries to the machine's resolvers.
func berthResolvers(t *testing.T, n *netCluster, tk *types.Task) {
	t.Helper()
	out, err := n.docker(n.hosts[tk.NodeID], 20*time.Second, "inspect", "--format", "{{json .HostConfig.Dns}}", tk.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	var dns []string
	_ = json.Unmarshal([]byte(out), &dns)
	if !inPool(dns) {
		t.Fatalf("%s's container resolvers are %s, not berth's DNS on its networks' gateways (in %s): "+
			"stopping before a lookup would reach the machine's resolvers", tk.Name(), out, clusterPool)
	}
}

func taskAddrs(tasks []*types.Task, key string) []string {
	var out []string
	for _, tk := range tasks {
		out = append(out, tk.Addresses[key])
	}
	slices.Sort(out)
	return out
}

// wantSet checks that name resolves, in the client, to exactly want.
func wantSet(t *testing.T, n *netCluster, client *types.Task, name string, want []string) {
	t.Helper()
	var l lookupResult
	n.must(t, client, 10*time.Second, &l, "lookup", name)
	slices.Sort(l.Addrs)
	if !slices.Equal(l.Addrs, want) {
		t.Errorf("%s = %+v, want %v", name, l, want)
	}
}

func notFound(t *testing.T, n *netCluster, from *types.Task, name string) {
	t.Helper()
	var l lookupResult
	n.must(t, from, 10*time.Second, &l, "lookup", name)
	if !l.NotFound {
		t.Errorf("%s asked from %s: %+v, want NXDOMAIN", name, from.Name(), l)
	}
}

// unreachable checks that HTTP and UDP from the task to addr both fail.
func unreachable(t *testing.T, n *netCluster, from *types.Task, what, addr string) {
	t.Helper()
	if addr == "" {
		t.Errorf("%s has no address to try", what)
		return
	}
	var g getResult
	n.must(t, from, 20*time.Second, &g, "get", "http://"+net.JoinHostPort(addr, "8080")+"/whoami", "-n", "1", "-timeout", "1s")
	var u udpResult
	n.must(t, from, 20*time.Second, &u, "udp", net.JoinHostPort(addr, strconv.Itoa(appUDPPort)), "-n", "1", "-timeout", "1s")
	if g.OK != 0 || u.OK != 0 {
		t.Errorf("%s reached %s (%s) over HTTP %d times, over UDP %d times; want isolation", from.Name(), what, addr, g.OK, u.OK)
	}
}

// noneFail runs a loop of count requests to web by its VIP: none may fail.
func noneFail(t *testing.T, n *netCluster, client *types.Task, when string, count int) {
	t.Helper()
	var g getResult
	n.must(t, client, time.Minute, &g, "get", webURL, "-n", strconv.Itoa(count))
	if g.Failed != 0 || g.OK != count {
		t.Errorf("%s: %d ok, %d failed %v (answered by %v); want all %d ok", when, g.OK, g.Failed, g.Errors, g.By, count)
	}
}

// on is the first of the tasks that runs on host.
func (n *netCluster) on(t *testing.T, tasks []*types.Task, host string) *types.Task {
	t.Helper()
	for _, tk := range tasks {
		if n.hosts[tk.NodeID] == host {
			return tk
		}
	}
	t.Fatalf("none of %d tasks runs on %s", len(tasks), host)
	return nil
}

// notRunning is met once the task is no longer running, in the store.
func (n *netCluster) notRunning(id string) func() error {
	return func() error {
		tk, err := n.ac.GetTask(context.Background(), id)
		if err != nil {
			return err
		}
		if tk.State == types.TaskRunning {
			return fmt.Errorf("%s still running", tk.Name())
		}
		return nil
	}
}

// unhealthy is met once the store has the task unhealthy or ended.
func (n *netCluster) unhealthy(id string) func() error {
	return func() error {
		tk, err := n.ac.GetTask(context.Background(), id)
		if err != nil {
			return err
		}
		if tk.State == types.TaskRunning && tk.DesiredState == types.DesiredRunning && tk.Health != types.HealthUnhealthy {
			return fmt.Errorf("%s is %q", tk.Name(), tk.Health)
		}
		return nil
	}
}

func hostOf(addr string) string {
	h, _, _ := net.SplitHostPort(addr)
	return h
}

type whoami struct {
	Host, Message, Remote, Client string
}

// whoamiAt asks /whoami at addr from this process and returns the answer
// and this side's address of the connection.
func whoamiAt(addr string) (whoami, string, error) {
	var local string
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, a)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/whoami")
	if err != nil {
		return whoami{}, "", err
	}
	defer resp.Body.Close()
	var w whoami
	if resp.StatusCode != http.StatusOK {
		return w, local, fmt.Errorf("status %s", resp.Status)
	}
	return w, local, json.NewDecoder(resp.Body).Decode(&w)
}

// udpEchoAt sends a datagram to addr (up to 3 times, a second apart, as
// a UDP client retries) and returns the echo's answer and this side's
// address.
func udpEchoAt(addr, payload string) (string, string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for try := 0; ; try++ {
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err = c.Write([]byte(payload)); err == nil {
			var k int
			if k, err = c.Read(buf); err == nil {
				return string(buf[:k]), c.LocalAddr().String(), nil
			}
		}
		if try == 2 {
			return "", c.LocalAddr().String(), err
		}
	}
}
