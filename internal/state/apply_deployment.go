package state

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/berth-dev/berth/internal/types"
)

// Deployments: one types.Deployment per version of a service, made in the
// same entry as the UpsertApp that made the version (recordDeployments),
// driven by the controller (SetDeployment, RollbackService).

// TableDeployments holds the deployments, by types.DeploymentID.
const TableDeployments = "deployments"

// deploymentsPerService bounds the history kept for each service.
const deploymentsPerService = 10

func deploymentsSchema() *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: TableDeployments,
		Indexes: map[string]*memdb.IndexSchema{
			"id":  {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"app": {Name: "app", Indexer: &memdb.StringFieldIndex{Field: "App"}},
			"service": {Name: "service", Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "App"},
				&memdb.StringFieldIndex{Field: "Service"},
			}}},
		},
	}
}

// SetDeployment records the controller's progress on a live deployment of
// the service's current version. A deployment that is final, or no longer
// of the current version, is left alone (the command was judged on state
// since overtaken). Result: nil.
type SetDeployment struct {
	ID         string                `json:"id"`
	State      types.DeploymentState `json:"state"`
	Updated    int                   `json:"updated"`
	Healthy    int                   `json:"healthy"`
	Total      int                   `json:"total"`
	Failed     int                   `json:"failed"`
	NextStepAt time.Time             `json:"next_step_at,omitzero"`
	Promoted   bool                  `json:"promoted,omitempty"`
	ReasonCode string                `json:"reason_code,omitempty"`
	Reason     string                `json:"reason,omitempty"`
	Now        time.Time             `json:"now"`
}

// RollbackService puts back the spec a live deployment replaced
// (Deployment.Previous), as a new version with a deployment of its own
// (Rollback set, rollback_config in force); the deployment ID becomes
// rolled_back with the reason given. Tasks still wanted at the previous
// version are of the new one: their spec is the same, so they are kept and
// only the replicas already replaced roll back. Result: the new
// *types.Deployment.
type RollbackService struct {
	ID         string    `json:"id"`
	ReasonCode string    `json:"reason_code"`
	Reason     string    `json:"reason"`
	Now        time.Time `json:"now"`
}

// PromoteDeployment promotes the canaries of a live deployment (`berth
// deploy promote`): the rest of its replicas may roll. One paused awaiting
// the promotion runs again. Result: the updated *types.Deployment.
type PromoteDeployment struct {
	ID  string    `json:"id"`
	Now time.Time `json:"now"`
}

func (SetDeployment) kind() commandKind     { return kindSetDeployment }
func (RollbackService) kind() commandKind   { return kindRollbackService }
func (PromoteDeployment) kind() commandKind { return kindPromoteDeployment }

func (c PromoteDeployment) apply(w *writeTxn) (any, error) {
	old := getDeployment(w.txn, c.ID)
	switch {
	case old == nil:
		return nil, fmt.Errorf("deployment %s: %w", c.ID, ErrNotFound)
	case !old.State.Live():
		return nil, fmt.Errorf("deployment %s has ended (%s); there is nothing to promote", c.ID, old.State)
	case old.Canary == nil || old.Canary.Count == 0:
		return nil, fmt.Errorf("deployment %s has no canaries to promote", c.ID)
	case old.Promoted:
		return old, nil
	}
	d := cloneDeployment(old)
	d.Promoted = true
	if d.State == types.DeploymentPaused && d.ReasonCode == types.ReasonPromotion {
		d.State, d.ReasonCode, d.Reason = types.DeploymentRunning, "", ""
	}
	d.UpdatedAt, d.ModifyIndex = c.Now, w.index
	return d, w.insert(TableDeployments, d)
}

func (c SetDeployment) apply(w *writeTxn) (any, error) {
	old := getDeployment(w.txn, c.ID)
	switch {
	case old == nil || !old.State.Live():
		return nil, nil
	case !c.State.Live() && c.State != types.DeploymentFailed && c.State != types.DeploymentSucceeded:
		return nil, fmt.Errorf("deployment %s: state %q is not set this way", c.ID, c.State)
	}
	app := getApp(w.txn, old.App)
	if app == nil || app.Deleting || app.Service(old.Service) == nil || app.Service(old.Service).Version != old.ToVersion {
		return nil, nil
	}
	d := cloneDeployment(old)
	d.State, d.Updated, d.Healthy, d.Total, d.Failed = c.State, c.Updated, c.Healthy, c.Total, c.Failed
	d.NextStepAt, d.ReasonCode, d.Reason = c.NextStepAt, c.ReasonCode, c.Reason
	d.Promoted = d.Promoted || c.Promoted // a promotion is never taken back
	if jsonEqual(d, old) {
		return nil, nil
	}
	d.UpdatedAt, d.ModifyIndex = c.Now, w.index
	return nil, w.insert(TableDeployments, d)
}

func (c RollbackService) apply(w *writeTxn) (any, error) {
	old := getDeployment(w.txn, c.ID)
	if old == nil {
		return nil, fmt.Errorf("deployment %s: %w", c.ID, ErrNotFound)
	}
	app := getApp(w.txn, old.App)
	var cur *types.Service
	if app != nil {
		cur = app.Service(old.Service)
	}
	switch {
	case app == nil || app.Deleting || cur == nil:
		return nil, fmt.Errorf("service %s of app %s is gone; there is nothing to roll back", old.Service, old.App)
	case cur.Version != old.ToVersion:
		return nil, fmt.Errorf("deployment %s is not of the current version of %s (%d); roll back that one", c.ID, old.Service, cur.Version)
	case old.Previous == nil:
		return nil, fmt.Errorf("service %s of app %s has no previous version to roll back to", old.Service, old.App)
	}
	next := cloneApp(app)
	svc := cloneService(old.Previous)
	svc.Replicas, svc.Status = cur.Replicas, nil // the count is not the spec's
	svc.Version = cur.Version + 1
	svc.SpecHash = svc.ComputeSpecHash(next)
	next.Services[slices.IndexFunc(next.Services, func(s *types.Service) bool { return s.Name == cur.Name })] = svc
	next.Version++
	next.UpdatedAt, next.ModifyIndex = c.Now, w.index
	if err := w.insert(TableApps, next); err != nil {
		return nil, err
	}
	for _, t := range listTasks(w.txn, TaskFilter{App: app.Name, Service: svc.Name}) {
		if t.ServiceVersion != old.FromVersion || t.DesiredState != types.DesiredRunning || t.State.Terminal() {
			continue
		}
		if err := updateTask(w, t.ID, func(t *types.Task) bool { t.ServiceVersion = svc.Version; return true }); err != nil {
			return nil, err
		}
	}
	done := cloneDeployment(old)
	done.State, done.ReasonCode, done.Reason = types.DeploymentRolledBack, c.ReasonCode, c.Reason
	done.UpdatedAt, done.ModifyIndex = c.Now, w.index
	if err := w.insert(TableDeployments, done); err != nil {
		return nil, err
	}
	d := newDeployment(next, cur, svc, c.Now, w.index)
	d.Rollback = true
	d.Config = cur.RollbackConfig.Effective()
	return d, insertDeployment(w, d)
}

// recordDeployments is UpsertApp's part in deployments, run in its entry
// when it asks for them (UpsertApp.Deploy):
// a deployment for each changed service (the live one it replaces is
// superseded), a paused deployment of an unchanged service resumed (`up`
// again), and the history of removed services dropped.
func recordDeployments(w *writeTxn, app, old *types.App, res *UpsertResult, c UpsertApp) error {
	if !c.Deploy {
		return nil // an entry from before deployments
	}
	now := c.Now
	for _, name := range res.Changed {
		svc := app.Service(name)
		if svc.IsOneOff() {
			continue // a run's one task starts at once: nothing rolls out
		}
		var prev *types.Service
		if old != nil {
			prev = old.Service(name)
		}
		if err := endLive(w, app.Name, name, now); err != nil {
			return err
		}
		d := newDeployment(app, prev, svc, now, w.index)
		d.Config = svc.UpdateConfig.Effective()
		d.StopGrace = c.StopGrace
		if prev != nil && svc.Canary != nil {
			canary := *svc.Canary // only for an update: a new service has nothing to compare with
			d.Canary = &canary
		}
		if err := insertDeployment(w, d); err != nil {
			return err
		}
	}
	for _, name := range res.Unchanged {
		if err := resume(w, app.Name, name, now); err != nil {
			return err
		}
	}
	for _, name := range res.Removed {
		if err := deleteDeployments(w, app.Name, name); err != nil {
			return err
		}
	}
	return nil
}

func newDeployment(app *types.App, prev, svc *types.Service, now time.Time, index uint64) *types.Deployment {
	d := &types.Deployment{
		ID: types.DeploymentID(app.Name, svc.Name, svc.Version), App: app.Name, Service: svc.Name,
		ToVersion: svc.Version, State: types.DeploymentRunning, Total: svc.Replicas,
		CreatedAt: now, UpdatedAt: now, CreateIndex: index, ModifyIndex: index,
	}
	if prev != nil {
		d.FromVersion, d.Previous = prev.Version, cloneService(prev)
		d.Previous.Status = nil
	}
	return d
}

// endLive supersedes the service's live deployments.
func endLive(w *writeTxn, app, service string, now time.Time) error {
	for _, old := range listDeployments(w.txn, app, service) {
		if !old.State.Live() {
			continue
		}
		d := cloneDeployment(old)
		d.State, d.ReasonCode = types.DeploymentSuperseded, types.ReasonSuperseded
		d.Reason = "a newer version of the service was submitted before this one finished rolling out"
		d.UpdatedAt, d.ModifyIndex = now, w.index
		if err := w.insert(TableDeployments, d); err != nil {
			return err
		}
	}
	return nil
}

// resume sets the service's paused deployment running again: failures
// before now no longer count.
func resume(w *writeTxn, app, service string, now time.Time) error {
	for _, old := range listDeployments(w.txn, app, service) {
		if old.State != types.DeploymentPaused {
			continue
		}
		d := cloneDeployment(old)
		d.State, d.ReasonCode, d.Reason, d.ResumedAt = types.DeploymentRunning, "", "", now
		d.UpdatedAt, d.ModifyIndex = now, w.index
		if err := w.insert(TableDeployments, d); err != nil {
			return err
		}
	}
	return nil
}

// insertDeployment stores d and drops the service's oldest final
// deployments beyond deploymentsPerService.
func insertDeployment(w *writeTxn, d *types.Deployment) error {
	if err := w.insert(TableDeployments, d); err != nil {
		return err
	}
	all := listDeployments(w.txn, d.App, d.Service)
	for _, old := range all[:max(len(all)-deploymentsPerService, 0)] {
		if old.State.Live() {
			continue
		}
		if err := w.delete(TableDeployments, old); err != nil {
			return err
		}
	}
	return nil
}

// deleteDeployments drops the deployments of an app's service (service
// "": of every service).
func deleteDeployments(w *writeTxn, app, service string) error {
	var ds []*types.Deployment
	if service == "" {
		ds = list[types.Deployment](w.txn, TableDeployments, "app", app)
	} else {
		ds = listDeployments(w.txn, app, service)
	}
	for _, d := range ds {
		if err := w.delete(TableDeployments, d); err != nil {
			return err
		}
	}
	return nil
}

func getDeployment(txn *memdb.Txn, id string) *types.Deployment {
	return first[types.Deployment](txn, TableDeployments, "id", id)
}

// listDeployments returns a service's deployments, oldest first.
func listDeployments(txn *memdb.Txn, app, service string) []*types.Deployment {
	ds := list[types.Deployment](txn, TableDeployments, "service", app, service)
	slices.SortFunc(ds, compareDeployments)
	return ds
}

func compareDeployments(a, b *types.Deployment) int {
	return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Service, b.Service), cmp.Compare(a.ToVersion, b.ToVersion))
}

// Deployment returns the deployment with the given ID, or nil.
func (v *View) Deployment(id string) *types.Deployment { return getDeployment(v.txn, id) }

// Deployments returns the deployments of an app (all apps when app is "";
// one service when service is given), by app, service and version.
func (v *View) Deployments(app, service string) []*types.Deployment {
	var ds []*types.Deployment
	switch {
	case app == "":
		ds = list[types.Deployment](v.txn, TableDeployments, "id")
	case service == "":
		ds = list[types.Deployment](v.txn, TableDeployments, "app", app)
	default:
		ds = list[types.Deployment](v.txn, TableDeployments, "service", app, service)
	}
	slices.SortFunc(ds, compareDeployments)
	return ds
}

// CurrentDeployment returns the deployment of the service's version v, or
// nil.
func (v *View) CurrentDeployment(app, service string, version uint64) *types.Deployment {
	return getDeployment(v.txn, types.DeploymentID(app, service, version))
}

func cloneDeployment(d *types.Deployment) *types.Deployment {
	c := *d
	if d.Previous != nil {
		c.Previous = cloneService(d.Previous)
	}
	if d.Config.Parallelism != nil {
		p := *d.Config.Parallelism
		c.Config.Parallelism = &p
	}
	if d.Canary != nil {
		canary := *d.Canary
		c.Canary = &canary
	}
	return &c
}

// cloneService deep-copies a service by a JSON round trip, as cloneApp.
func cloneService(s *types.Service) *types.Service {
	b, err := json.Marshal(s)
	if err != nil {
		panic("state: clone service: " + err.Error()) // plain data: cannot fail
	}
	var c types.Service
	if err := json.Unmarshal(b, &c); err != nil {
		panic("state: clone service: " + err.Error())
	}
	return &c
}

// DryRun applies cmd to a copy of the store that is thrown away, and
// returns its result: what the command would do (`berth up --dry-run`),
// by the very code that would do it, changing nothing.
func (s *Store) DryRun(cmd Command) (any, error) {
	db, _ := s.current()
	next, _ := maxIndex(db.Txn(false), allTables, nil)
	w := &writeTxn{txn: db.Txn(true), index: next + 1, touched: map[string]bool{}}
	defer w.txn.Abort()
	return cmd.apply(w)
}
