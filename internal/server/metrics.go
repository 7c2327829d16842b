package server

import (
	"crypto/tls"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/controller"
	"github.com/berth-dev/berth/internal/state"
	"github.com/berth-dev/berth/internal/types"
)

// metrics are the manager's Prometheus metrics, in a registry of its own
// (no globals: two managers in one test process must not collide).
type metrics struct {
	reg          *prometheus.Registry
	applySeconds prometheus.Histogram
	apiSeconds   *prometheus.HistogramVec
	handshakes   *prometheus.CounterVec
	passes       *prometheus.CounterVec
	appsVisited  prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "berth_raft_apply_seconds",
			Help:    "Time to commit one command through Raft and apply it to the state store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		apiSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_api_request_seconds",
			Help:    "API request latency by route, method and status code (blocking queries included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "method", "code"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_tls_handshakes_total",
			Help: "TLS handshakes accepted, by listener (api, cluster) and whether the client resumed a session.",
		}, []string{"listener", "resumed"}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_reconcile_passes_total",
			Help: "Reconcile passes the leader completed, by whether they visited every app (full: the nodes changed) or only those that changed.",
		}, []string{"full"}),
		appsVisited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "berth_reconcile_apps_visited_total",
			Help: "Apps the leader's reconcile passes visited: beside the passes, how much of the cluster each pass looks at.",
		}),
	}
	snapshotBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_raft_snapshot_bytes",
		Help: "Size of the most recent Raft snapshot of the state store.",
	}, func() float64 {
		if s.raft == nil {
			return 0
		}
		return float64(s.raft.LastSnapshotSize())
	})
	// The registry's directory is measured at scrape time: a walk of its
	// files, cheap beside a scrape interval.
	registryBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_registry_bytes",
		Help: "What this manager's cluster registry holds on disk (its limit is berth_registry_max_bytes).",
	}, func() float64 {
		if s.registry == nil {
			return 0
		}
		n, _ := s.registry.Usage()
		return float64(n)
	})
	registryMax := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "berth_registry_max_bytes",
		Help: "The limit of this manager's cluster registry (--registry-max-size).",
	}, func() float64 {
		if s.registry == nil {
			return 0
		}
		return float64(s.registry.MaxBytes())
	})
	m.reg.MustRegister(m.applySeconds, m.apiSeconds, m.handshakes, m.passes, m.appsVisited, snapshotBytes, registryBytes, registryMax, &storeCollector{store: s.store},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// countHandshakes makes cfg count the handshakes it accepts, by whether
// they resumed: a count that climbs while nodes stay put means clients
// keep losing their connections (every new one costs both sides CPU).
func (m *metrics) countHandshakes(cfg *tls.Config, listener string) *tls.Config {
	check := cfg.VerifyConnection
	cfg.VerifyConnection = func(st tls.ConnectionState) error {
		if check != nil {
			if err := check(st); err != nil {
				return err
			}
		}
		m.handshakes.WithLabelValues(listener, strconv.FormatBool(st.DidResume)).Inc()
		return nil
	}
	return cfg
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// metricsHandler serves /metrics behind the same guard as the API beside
// it: the metrics tell who runs what, so they need the same credential.
func (s *Server) metricsHandler(guard func(handlerFunc) handlerFunc) http.Handler {
	h := s.metrics.handler()
	return s.instrument("GET "+api.PathMetrics, guard(func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}))
}

// storeCollector reads counts from the store at scrape time, so no
// bookkeeping happens on the write path.
type storeCollector struct{ store *state.Store }

var (
	tasksDesc = prometheus.NewDesc("berth_tasks", "Tasks by observed state.", []string{"state"}, nil)
	nodesDesc = prometheus.NewDesc("berth_nodes", "Nodes by status.", []string{"status"}, nil)
	appsDesc  = prometheus.NewDesc("berth_apps", "Apps in the store.", nil, nil)
	indexDesc = prometheus.NewDesc("berth_store_index", "Last Raft index applied to the state store.", nil, nil)
)

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tasksDesc
	ch <- nodesDesc
	ch <- appsDesc
	ch <- indexDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	view := c.store.View()
	byState := view.TaskCountsByState()
	for _, st := range []types.TaskState{types.TaskPending, types.TaskAssigned, types.TaskStarting, types.TaskRunning,
		types.TaskComplete, types.TaskFailed, types.TaskShutdown, types.TaskRejected, types.TaskLost} {
		ch <- prometheus.MustNewConstMetric(tasksDesc, prometheus.GaugeValue, float64(byState[st]), string(st))
	}
	byStatus := map[types.NodeStatus]int{}
	for _, n := range view.Nodes() {
		byStatus[n.Status]++
	}
	for _, st := range []types.NodeStatus{types.NodeReady, types.NodeDown} {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(byStatus[st]), string(st))
	}
	ch <- prometheus.MustNewConstMetric(appsDesc, prometheus.GaugeValue, float64(len(view.Apps())))
	ch <- prometheus.MustNewConstMetric(indexDesc, prometheus.GaugeValue, float64(view.Index()))
}

// countPass counts one completed reconcile pass and the apps it visited.
func (m *metrics) countPass(r controller.PassReport) {
	m.passes.WithLabelValues(strconv.FormatBool(r.Full)).Inc()
	m.appsVisited.Add(float64(r.Visited))
}
