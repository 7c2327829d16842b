package agent

import (
	"context"
	"errors"
	"reflect"
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
	// netMapPace is the least time between two hand-outs of changed maps.
	// A deploy changes the map with every replica that starts (its
	// address, then serving), and each hand-out runs iptables and netlink
	// on the node: paced, the changes of a burst go out together and the
	// CPU stays with the engine starting the containers. Well under the
	// default drain delay (1 s), so a stopping replica still leaves DNS
	// and the mesh before its stop signal.
	netMapPace = 200 * time.Millisecond
)

// netMapSubs are the functions the network map is handed to.
type netMapSubs struct {
	mu  sync.Mutex
	fns []func(ctx context.Context, m *api.NetworkMap)
	// received are called by the watch with every map as it arrives,
	// before it queues for fns (onNetMapReceived).
	received []func(ctx context.Context, m *api.NetworkMap)
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

// onNetMapReceived subscribes f to every map as the watch receives it,
// ahead of the overlay and of the fan-out's pace: for what must not wait
// (the mesh's withdrawal of replicas that stopped serving). f must be
// quick and must not need the map's new slices routed.
func (a *Agent) onNetMapReceived(f func(ctx context.Context, m *api.NetworkMap)) {
	a.netMap.mu.Lock()
	defer a.netMap.mu.Unlock()
	a.netMap.received = append(a.netMap.received, f)
}

// fanOutNetMap hands every map from mailbox, and the latest one again on
// every tick of every, to the subscribers.
func (a *Agent) fanOutNetMap(ctx context.Context, mailbox <-chan *api.NetworkMap, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var latest, handed *api.NetworkMap
	for {
		select {
		case <-ctx.Done():
			return
		case latest = <-mailbox:
			if handed != nil && reflect.DeepEqual(latest, handed) {
				continue // a change elsewhere in the store: nothing to converge
			}
		case <-tick.C:
			if latest == nil {
				continue
			}
		}
		handed = latest
		a.netMap.mu.Lock()
		fns := slices.Clone(a.netMap.fns)
		a.netMap.mu.Unlock()
		for _, f := range fns {
			if ctx.Err() != nil {
				return
			}
			f(ctx, latest)
		}
		api.SleepCtx(ctx, netMapPace) // the next map is the latest by then (deliverLatest)
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
		a.netMap.mu.Lock()
		received := slices.Clone(a.netMap.received)
		a.netMap.mu.Unlock()
		for _, f := range received {
			f(ctx, m)
		}
		deliverLatest(mailbox, m)
		if spun {
			api.SleepCtx(ctx, retry.Next())
		} else {
			retry.Reset()
		}
	}
}
