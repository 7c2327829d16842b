package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/api"
)

const (
	// netMapWait is how long one blocking query on the network map waits.
	netMapWait = 30 * time.Second
	// netMapReapply is how often the subscribers get the latest map again
	// without a change: the kernel's state (rules, routes, a DNS socket)
	// may have been changed behind the agent's back, by Docker restarting
	// or by an operator, and each subscriber converges it again.
	netMapReapply = 30 * time.Second
)

// netMapSubs are the functions the network map is handed to.
type netMapSubs struct {
	mu  sync.Mutex
	fns []func(ctx context.Context, m *api.NetworkMap)
}

// onNetMap subscribes f to the cluster's network map. Every subscriber is
// called from one goroutine, in the order they subscribed, with the latest
// map (a map that changed while the subscribers ran is skipped for the one
// after it), on every change and again every netMapReapply. f must return
// soon: the next subscriber, and the next map, wait for it. Subscribe
// before Run calls startNetworking (overlay.go), which starts the watch
// only with Config.Overlay; the node's overlay is always the first
// subscriber, so DNS and the mesh see a map whose slices are routed.
func (a *Agent) onNetMap(f func(ctx context.Context, m *api.NetworkMap)) {
	a.netMap.mu.Lock()
	defer a.netMap.mu.Unlock()
	a.netMap.fns = append(a.netMap.fns, f)
}

// fanOutNetMap hands every map from mailbox, and the latest one again on
// every tick of every, to the subscribers.
func (a *Agent) fanOutNetMap(ctx context.Context, mailbox <-chan *api.NetworkMap, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var latest *api.NetworkMap
	for {
		select {
		case <-ctx.Done():
			return
		case latest = <-mailbox:
		case <-tick.C:
			if latest == nil {
				continue
			}
		}
		a.netMap.mu.Lock()
		fns := slices.Clone(a.netMap.fns)
		a.netMap.mu.Unlock()
		for _, f := range fns {
			if ctx.Err() != nil {
				return
			}
			f(ctx, latest)
		}
	}
}

// watchNetMap follows the network map with blocking queries, as watch
// follows the node's tasks: backoff on errors, the client's failover to
// another manager, an index taken as the manager gives it.
func (a *Agent) watchNetMap(ctx context.Context, mailbox chan *api.NetworkMap) {
	var index uint64
	retry := newBackoff(a.timing.RetryEvery)
	for ctx.Err() == nil {
		asked := time.Now()
		m, meta, err := a.client.NetworkMap(ctx, api.QueryOptions{Index: index, Wait: netMapWait})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, api.ErrNotFound) && !a.net.noMap.Swap(true) {
				// A manager of a version without the overlay: tasks get
				// local networks rather than wait for slices that never come.
				a.log.Warn("the manager serves no network map; this node's networks stay local until it does", "err", err)
			}
			a.log.Warn("fetch the network map failed; will retry (the overlay, DNS and mesh keep the last one)", "err", err)
			api.SleepCtx(ctx, retry.Next())
			continue
		}
		a.net.noMap.Store(false)
		spun := meta.Index <= index && time.Since(asked) < netMapWait/2
		index = max(meta.Index, 1)
		deliverLatest(mailbox, m)
		if spun {
			api.SleepCtx(ctx, retry.Next())
		} else {
			retry.Reset()
		}
	}
}
