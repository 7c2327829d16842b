package scheduler

import (
	"maps"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/types"
)

// Cluster is the scheduler's view of the cluster: the nodes, and the
// resources, host ports and task counts already used on each. It is built
// once (NewCluster) and then either thrown away after a pass, or kept and
// told of every change (SetNode, RemoveNode, SetService, RemoveService,
// SetTask, RemoveTask), so that a pass costs what it places rather than the
// size of the cluster. Place and Assign account what they place as tasks of
// the view; a caller that keeps the view removes them (RemoveTask) once the
// store has the outcome. A Cluster is not safe for concurrent use.
type Cluster struct {
	// nodes are indexed by slot. NewCluster fills slots in node ID order; a
	// node added later takes the next slot, and a removed node's slot stays,
	// dead, so that the indexes cached by candidates stay valid.
	nodes []*nodeInfo
	byID  map[string]int32 // live node ID -> slot
	live  int              // nodes not dead
	// maxID is the highest node ID ever added, whose rank is maxRank.
	maxID   string
	maxRank int32
	svcs    map[string]*svcState
	// tasks holds every task holding resources that the view was told of
	// or placed itself, by task ID, so a task is never counted twice.
	tasks map[string]*taskInfo
	// orphans are tasks of nodes the cluster does not have (yet, or any
	// more), by node ID: they count again if the node comes back.
	orphans map[string][]*taskInfo
	// gen is bumped on every change, so cached explanations of why a
	// service cannot be placed know when they have gone stale.
	gen uint64

	// touched logs, in order, the slots of nodes that may have become a
	// better or a feasible choice (a task left, the node changed): what
	// candidates' lazy heaps cannot see by themselves. touchedBase is the
	// log position of touched[0].
	touched     []int32
	touchedBase int

	// cands caches one candidates structure per service spec across Place
	// calls (least recently used evicted past maxCached).
	cands map[candKey]*candidates
	// groupings cut the nodes into spread groups, by the joined label keys
	// (spreadGroups); dropped with cands.
	groupings map[string]*spreadGroups
	calls     uint64 // Place calls, for least recently used

	// slab hands out taskInfos allocated 256 at a time: a large plan
	// otherwise spends much of its time allocating them.
	slab []taskInfo
}

// nodeInfo is one node and what is already used on it.
type nodeInfo struct {
	node     *types.Node
	dead     bool  // removed from the cluster
	rank     int32 // the node's place in ID order (ties in scores break by it)
	drained  bool  // node.Availability is drain: its tasks are leaving
	reserved types.ResourceAmounts
	tasks    int32 // len(held)
	held     []*taskInfo
	ports    portSet
}

// svcState is what the view knows of one service ID: its spec (for what its
// tasks reserve) and where its tasks are.
type svcState struct {
	id     string
	spec   *types.Service // nil: its tasks count on their node but reserve nothing
	demand demand
	// counts holds the counted tasks per slot (see taskInfo.counted),
	// dense: read on every placement, and shared with the candidates.
	counts []int32
	total  int32         // sum of counts
	ntasks int           // tasks of the service in Cluster.tasks
	cands  []*candidates // cached candidates of this service ID, fed every count change
}

// taskInfo is one task holding resources.
type taskInfo struct {
	id       string
	nodeID   string
	svc      *svcState
	shutdown bool   // desired shutdown: on its way out
	idx      int32  // slot while accounted, -1 while its node is missing
	pos      int    // index in its node's held
	d        demand // what it holds while accounted
	// own, when set, is what the task takes whatever its service's spec
	// says: a task Place or Assign placed takes what its request's spec
	// asks.
	own *demand
	// counted tells whether the task counts as one of its service's tasks
	// on its node (see leaving).
	counted bool
}

// demand is what one task of a service takes from its node.
type demand struct {
	reserve types.ResourceAmounts
	ports   []hostPort
}

func demandOf(svc *types.Service) demand {
	if svc == nil {
		return demand{}
	}
	return demand{reserve: svc.Resources.Reservations, ports: publishedPorts(svc.Ports)}
}

func (d demand) equal(o demand) bool { return d.reserve == o.reserve && slices.Equal(d.ports, o.ports) }

// NewCluster builds a view from the nodes and the tasks that hold resources
// on them. Tasks that do not hold resources (types.Task.HoldsResources) are
// skipped; tasks on nodes not in the list are kept aside until their node
// appears. services is keyed by types.ServiceID(app, name) and gives each
// task its reservations and published ports; a task whose service is
// missing still counts as a task on its node but reserves nothing.
func NewCluster(nodes []*types.Node, tasks []*types.Task, services map[string]*types.Service) *Cluster {
	c := &Cluster{
		byID: make(map[string]int32, len(nodes)),
		svcs: make(map[string]*svcState, len(services)),
		// Room for a plan's worth of placements: a view built for a plan
		// (the plan applier's) would otherwise regrow its table of tasks
		// as it accounts them.
		tasks:   make(map[string]*taskInfo, len(tasks)+max(1024, len(tasks)/2)),
		orphans: map[string][]*taskInfo{},
		cands:   map[candKey]*candidates{},
	}
	sorted := slices.Clone(nodes)
	slices.SortStableFunc(sorted, func(a, b *types.Node) int { return strings.Compare(a.ID, b.ID) })
	sorted = slices.CompactFunc(sorted, func(a, b *types.Node) bool { return a.ID == b.ID })
	c.nodes = make([]*nodeInfo, 0, len(sorted))
	for _, n := range sorted {
		c.SetNode(n)
	}
	for id, svc := range services {
		c.SetService(id, svc)
	}
	// As SetTask, without its checks for a task already known (a task
	// listed twice is still counted once) and with the service looked up
	// once per run of its tasks: the plan applier builds a view per plan.
	var lastApp, lastName string
	var last *svcState
	for _, t := range tasks {
		if !t.HoldsResources() || c.tasks[t.ID] != nil {
			continue
		}
		if last == nil || t.App != lastApp || t.Service != lastName {
			lastApp, lastName, last = t.App, t.Service, c.svc(types.ServiceID(t.App, t.Service))
		}
		c.account(c.newTask(t.ID, t.NodeID, last, t.DesiredState == types.DesiredShutdown, nil))
	}
	c.touched, c.touchedBase = nil, 0 // nothing cached yet to tell
	return c
}

// SetNode adds a node or records its new description.
func (c *Cluster) SetNode(n *types.Node) {
	c.gen++
	idx, ok := c.byID[n.ID]
	if !ok {
		idx = int32(len(c.nodes))
		ni := &nodeInfo{node: n, drained: isDraining(n)}
		c.nodes = append(c.nodes, ni)
		c.byID[n.ID] = idx
		c.live++
		if len(c.nodes) == 1 || n.ID > c.maxID {
			c.maxRank++
			ni.rank, c.maxID = c.maxRank, n.ID
		} else {
			c.rerank()
		}
		if len(c.orphans) > 0 {
			for _, ti := range c.orphans[n.ID] {
				c.account(ti)
			}
			delete(c.orphans, n.ID)
		}
		c.touch(idx)
		return
	}
	ni := c.nodes[idx]
	old := ni.node
	if old == n {
		return
	}
	if !placementRelevant(old, n) {
		ni.node = n // a heartbeat or an address: nothing the filters read
		return
	}
	if !maps.Equal(old.Labels, n.Labels) {
		c.dropCandidates() // spread groups are cut by labels
	}
	// Its tasks are accounted again: their ports (ingress on an overlay
	// node) and whether they count (a drained node's are leaving) follow
	// the node.
	held := slices.Clone(ni.held)
	for _, ti := range held {
		c.unaccount(ti)
	}
	ni.node, ni.drained = n, isDraining(n)
	for _, ti := range held {
		c.account(ti)
	}
	c.touch(idx)
}

// rerank numbers the nodes in ID order again, after a node joined whose ID
// is not the highest; the cached heaps hold old ranks, so they go.
func (c *Cluster) rerank() {
	var order []*nodeInfo
	for _, n := range c.nodes {
		if !n.dead {
			order = append(order, n)
		}
	}
	slices.SortFunc(order, func(a, b *nodeInfo) int { return strings.Compare(a.node.ID, b.node.ID) })
	for i, n := range order {
		n.rank = int32(i + 1)
	}
	c.maxRank, c.maxID = int32(len(order)), order[len(order)-1].node.ID
	c.dropCandidates()
}

// placementRelevant reports whether a node's change can change a
// placement.
func placementRelevant(a, b *types.Node) bool {
	return a.Status != b.Status || a.Availability != b.Availability || a.Role != b.Role ||
		a.Name != b.Name || a.Overlay != b.Overlay || a.Capacity != b.Capacity ||
		!slices.Equal(a.Drivers, b.Drivers) || !maps.Equal(a.Labels, b.Labels)
}

// RemoveNode takes a node out of the view. Its tasks are kept aside and
// count again if it comes back.
func (c *Cluster) RemoveNode(id string) {
	idx, ok := c.byID[id]
	if !ok {
		return
	}
	c.gen++
	ni := c.nodes[idx]
	for _, ti := range slices.Clone(ni.held) {
		c.unaccount(ti)
		c.orphans[id] = append(c.orphans[id], ti)
	}
	ni.dead = true
	delete(c.byID, id)
	c.live--
	c.dropCandidates() // spread groups count the node's labels
}

// SetService records a service's spec: what each of its tasks reserves.
func (c *Cluster) SetService(svcID string, svc *types.Service) {
	s := c.svc(svcID)
	if s.spec == svc {
		return
	}
	s.spec = svc
	c.setDemand(s, demandOf(svc))
}

// RemoveService forgets a service's spec; its tasks, while the view has
// them, still count on their nodes but reserve nothing.
func (c *Cluster) RemoveService(svcID string) {
	s := c.svcs[svcID]
	if s == nil {
		return
	}
	s.spec = nil
	c.setDemand(s, demand{})
	c.forgetIfUnused(s)
}

func (c *Cluster) setDemand(s *svcState, d demand) {
	if s.demand.equal(d) {
		return
	}
	c.gen++
	var held []*taskInfo
	for _, ti := range c.tasks { // a rare change: a new spec reserving differently
		if ti.svc == s && ti.idx >= 0 && ti.own == nil {
			c.unaccount(ti)
			held = append(held, ti)
		}
	}
	s.demand = d
	for _, ti := range held {
		c.account(ti)
	}
}

// SetTask records a task's new state: a task holding resources
// (types.Task.HoldsResources) is accounted on its node, any other is
// removed.
func (c *Cluster) SetTask(t *types.Task) {
	if !t.HoldsResources() {
		c.RemoveTask(t.ID)
		return
	}
	s := types.ServiceID(t.App, t.Service)
	shutdown := t.DesiredState == types.DesiredShutdown
	if ti := c.tasks[t.ID]; ti != nil {
		if ti.nodeID == t.NodeID && ti.svc == c.svcs[s] && ti.shutdown == shutdown {
			return
		}
		c.RemoveTask(t.ID)
	}
	ti := c.newTask(t.ID, t.NodeID, c.svc(s), shutdown, nil)
	c.account(ti)
}

func (c *Cluster) newTask(id, nodeID string, s *svcState, shutdown bool, own *demand) *taskInfo {
	if len(c.slab) == 0 {
		c.slab = make([]taskInfo, 256)
	}
	ti := &c.slab[0]
	c.slab = c.slab[1:]
	*ti = taskInfo{id: id, nodeID: nodeID, svc: s, shutdown: shutdown, idx: -1, own: own}
	c.tasks[id] = ti
	s.ntasks++
	return ti
}

// place accounts a task Place or Assign put on node idx, taking what its
// request's spec asks; placeFor is place for a candidates' own service.
func (c *Cluster) place(idx int32, taskID, svcID string, d *demand) {
	c.accountOn(c.newTask(taskID, c.nodes[idx].node.ID, c.svc(svcID), false, d), idx)
}

func (c *Cluster) placeFor(k *candidates, idx int32, taskID string, d *demand) {
	c.accountOn(c.newTask(taskID, c.nodes[idx].node.ID, k.svc, false, d), idx)
}

// RemoveTask forgets a task: it ended, was deleted, or was only placed by
// this view and the store now says where it is.
func (c *Cluster) RemoveTask(id string) {
	ti := c.tasks[id]
	if ti == nil {
		return
	}
	if ti.idx >= 0 {
		c.unaccount(ti)
	} else {
		c.orphans[ti.nodeID] = slices.DeleteFunc(c.orphans[ti.nodeID], func(o *taskInfo) bool { return o == ti })
		if len(c.orphans[ti.nodeID]) == 0 {
			delete(c.orphans, ti.nodeID)
		}
	}
	delete(c.tasks, id)
	ti.svc.ntasks--
	c.forgetIfUnused(ti.svc)
}

func (c *Cluster) svc(svcID string) *svcState {
	s := c.svcs[svcID]
	if s == nil {
		s = &svcState{id: svcID}
		c.svcs[svcID] = s
	}
	return s
}

// forgetIfUnused drops what the view holds of a service that has no spec,
// no task and no cached candidates.
func (c *Cluster) forgetIfUnused(s *svcState) {
	if s.spec == nil && s.ntasks == 0 && len(s.cands) == 0 {
		delete(c.svcs, s.id)
	}
}

// account puts a task on its node, or aside when the node is missing.
func (c *Cluster) account(ti *taskInfo) {
	idx, ok := c.byID[ti.nodeID]
	if !ok {
		c.gen++
		ti.idx = -1
		c.orphans[ti.nodeID] = append(c.orphans[ti.nodeID], ti)
		return
	}
	c.accountOn(ti, idx)
}

// accountOn puts a task on node idx, its node.
func (c *Cluster) accountOn(ti *taskInfo, idx int32) {
	c.gen++
	n := c.nodes[idx]
	ti.idx, ti.d, ti.pos = idx, ti.svc.demand, len(n.held)
	if ti.own != nil {
		ti.d = *ti.own
	}
	n.held = append(n.held, ti)
	n.tasks++
	n.reserved = n.reserved.Add(ti.d.reserve)
	for _, p := range ti.d.ports {
		if p.binds(n.node) {
			if n.ports == nil {
				n.ports = portSet{} // most nodes never bind a port: no map for them
			}
			n.ports.add(p)
		}
	}
	ti.counted = !leaving(ti.shutdown, n.drained)
	if ti.counted {
		c.count(ti.svc, idx, 1)
	}
}

// unaccount takes an accounted task off its node.
func (c *Cluster) unaccount(ti *taskInfo) {
	c.gen++
	idx := ti.idx
	n := c.nodes[idx]
	last := n.held[len(n.held)-1]
	n.held[ti.pos], last.pos = last, ti.pos
	n.held[len(n.held)-1] = nil
	n.held = n.held[:len(n.held)-1]
	n.tasks--
	n.reserved = n.reserved.Add(types.ResourceAmounts{
		NanoCPUs: -ti.d.reserve.NanoCPUs, MemoryBytes: -ti.d.reserve.MemoryBytes, Pids: -ti.d.reserve.Pids})
	for _, p := range ti.d.ports {
		if p.binds(n.node) {
			n.ports.remove(p)
		}
	}
	if ti.counted {
		c.count(ti.svc, idx, -1)
	}
	ti.idx, ti.counted = -1, false
	c.touch(idx)
}

// count adds delta to a service's tasks on node idx, and tells the cached
// candidates of the service.
func (c *Cluster) count(s *svcState, idx int32, delta int32) {
	if int(idx) >= len(s.counts) {
		s.counts = append(s.counts, make([]int32, len(c.nodes)-len(s.counts))...)
	}
	s.counts[idx] += delta
	s.total += delta
	for _, k := range s.cands {
		k.count(idx, delta)
	}
}

// touch logs that node idx may have become a better or a feasible choice.
func (c *Cluster) touch(idx int32) {
	if len(c.cands) == 0 {
		c.touchedBase += len(c.touched)
		c.touched = c.touched[:0]
		return
	}
	c.touched = append(c.touched, idx)
}

// serviceTasks returns how many tasks of service svcID node idx runs.
func (c *Cluster) serviceTasks(svcID string, idx int32) int32 {
	if s := c.svcs[svcID]; s != nil {
		return s.count(idx)
	}
	return 0
}

// count returns how many tasks of the service node idx runs.
func (s *svcState) count(idx int32) int32 {
	if int(idx) < len(s.counts) {
		return s.counts[idx]
	}
	return 0
}

// holder returns the node a task holds resources on, and whether it does.
func (c *Cluster) holder(taskID string) (string, bool) {
	ti := c.tasks[taskID]
	if ti == nil {
		return "", false
	}
	return ti.nodeID, true
}

// NodeUsage is what a view counts on one node (Cluster.Usage).
type NodeUsage struct {
	Reserved types.ResourceAmounts
	Tasks    int
	Ports    []string       // "8080/tcp@127.0.0.1" ("@" alone: every address), sorted
	Services map[string]int // counted tasks by service ID (tasks being replaced are not)
}

// Usage returns what the view counts on each node, by node ID: a view kept
// up to date by changes must say what one built afresh says.
func (c *Cluster) Usage() map[string]NodeUsage {
	out := make(map[string]NodeUsage, c.live)
	for idx, n := range c.nodes {
		if n.dead {
			continue
		}
		u := NodeUsage{Reserved: n.reserved, Tasks: int(n.tasks), Services: map[string]int{}}
		for key, ips := range n.ports {
			for _, ip := range ips {
				u.Ports = append(u.Ports, key.String()+"@"+ip)
			}
		}
		slices.Sort(u.Ports)
		for id, s := range c.svcs {
			if k := s.count(int32(idx)); k != 0 {
				u.Services[id] = int(k)
			}
		}
		out[n.node.ID] = u
	}
	return out
}
