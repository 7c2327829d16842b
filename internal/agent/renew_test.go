package agent

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/pki"
)

// TestAgentRenewsItsCertificate: with certificates that live 3 s, the agent
// renews its own before they end, saves the new one, and keeps talking to
// the manager past the first one's expiry without registering again (its
// tasks are untouched). Its --label flags went with the join.
func TestAgentRenewsItsCertificate(t *testing.T) {
	m := newUnstartedFakeManager(t)
	m.certTTL = 3 * time.Second
	m.srv.StartTLS()
	fd := newFakeDriver("fake")
	cfg := testConfig(t, m, fd)
	cfg.Labels = map[string]string{"zone": "a"}
	a, _ := runAgent(t, cfg)
	waitFor(t, "the node registered", func() bool { return m.known(a.NodeID()) })
	first, err := pki.LoadIdentity(pkiDir(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	m.read(func() {
		if !maps.Equal(m.joinLabels, cfg.Labels) {
			t.Errorf("join labels %v, want %v", m.joinLabels, cfg.Labels)
		}
	})
	// Past the first certificate's end, heartbeats still arrive: they
	// use a renewed certificate.
	waitFor(t, "the first certificate to expire", func() bool { return time.Now().After(first.Cert.Leaf.NotAfter.Add(time.Second)) })
	var beats int
	m.read(func() { beats = m.heartbeats })
	waitFor(t, "heartbeats after the first certificate expired", func() bool {
		n := 0
		m.read(func() { n = m.heartbeats })
		return n > beats+2
	})
	saved, err := pki.LoadIdentity(pkiDir(cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	if saved.NodeID != first.NodeID || !saved.Cert.Leaf.NotAfter.After(first.Cert.Leaf.NotAfter) {
		t.Errorf("saved certificate: node %s until %s; want node %s past %s", saved.NodeID, saved.Cert.Leaf.NotAfter, first.NodeID, first.Cert.Leaf.NotAfter)
	}
	m.read(func() {
		if m.renewals == 0 || m.registrations != 1 || m.forbidden != 0 {
			t.Errorf("renewals %d, registrations %d, refused %d; want some renewals, one registration, no refusal", m.renewals, m.registrations, m.forbidden)
		}
	})
}

func TestExplainRefusal(t *testing.T) {
	m := newFakeManager(t)
	valid := &Agent{live: pki.NewLive(m.issue(t, pki.RoleWorker, "w1"))}
	expired := &Agent{live: pki.NewLive(expiredIdentity(t, m))}
	refused := errors.New(`Post "https://m:7702/v1/nodes/register": remote error: tls: bad certificate`)
	cases := []struct {
		name string
		a    *Agent
		err  error
		want string
	}{
		{"revoked", valid, refused, "removed from the cluster (berth node rm)"},
		{"expired", expired, refused, "certificate expired at"},
		{"not a refusal", valid, errors.New("connection refused"), "connection refused"},
	}
	for _, tc := range cases {
		if got := tc.a.explainRefusal(tc.err); !strings.Contains(got.Error(), tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("%s: %v, want it to say %q and wrap the cause", tc.name, got, tc.want)
		}
	}
}

// expiredIdentity is a worker identity of m's cluster that expired.
func expiredIdentity(t *testing.T, m *fakeManager) *pki.Identity {
	t.Helper()
	keyPEM, csrPEM, err := pki.NewKeyAndCSR("w2", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := m.ca.SignCSR(csrPEM, "w2", pki.RoleWorker, time.Now().Add(-time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := pki.NewIdentity(m.ca.CertPEM, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
