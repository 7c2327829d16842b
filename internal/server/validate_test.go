package server

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/types"
)

func validApp() *types.App {
	return &types.App{
		Name:     "shop",
		Networks: map[string]*types.Network{"default": {Name: "default"}},
		Volumes:  map[string]*types.Volume{"data": {Name: "data"}},
		Secrets:  map[string]*types.Secret{"key": {Name: "key", Data: []byte("s3cret")}},
		Services: []*types.Service{{
			Name: "web", Image: "web:1", Replicas: 2,
			Ports:    []types.Port{{Target: 80, Published: 8080, Protocol: "tcp"}},
			Networks: []types.NetworkAttachment{{Name: "default"}},
			Mounts:   []types.Mount{{Type: types.MountVolume, Source: "data", Target: "/data"}},
			Secrets:  []types.FileRef{{Source: "key", Target: "/run/secrets/key"}},
		}, {
			Name: "job", Driver: types.DriverExec, Command: []string{"/bin/true"}, Replicas: 1,
			DependsOn: []types.Dependency{{Service: "web", Condition: types.ConditionStarted, Required: true}},
		}},
	}
}

func TestValidateApp(t *testing.T) {
	cases := []struct {
		name   string
		change func(a *types.App)
		field  string // "" means valid
	}{
		{"valid", func(a *types.App) {}, ""},
		{"bad app name", func(a *types.App) { a.Name = "Shop!" }, "name"},
		{"no services", func(a *types.App) { a.Services = nil }, "services"},
		{"docker without image", func(a *types.App) { a.Services[0].Image = "" }, "services.web.image"},
		{"exec without command", func(a *types.App) { a.Services[1].Command = nil }, "services.job.command"},
		{"unknown driver", func(a *types.App) { a.Services[0].Driver = "lxc" }, "services.web.driver"},
		{"sim without image", func(a *types.App) { a.Services[0].Driver, a.Services[0].Image = types.DriverSim, "" }, ""},
		{"sim bad label", func(a *types.App) {
			a.Services[0].Driver, a.Services[0].DeployLabels = types.DriverSim, map[string]string{"berth.sim.exit_code": "x"}
		}, "services.web.deploy.labels"},
		{"negative replicas", func(a *types.App) { a.Services[0].Replicas = -1 }, "services.web.replicas"},
		{"global with replicas", func(a *types.App) { a.Services[0].Mode = types.ModeGlobal }, "services.web.replicas"},
		{"bad mode", func(a *types.App) { a.Services[0].Mode = "daemon" }, "services.web.mode"},
		{"port without target", func(a *types.App) { a.Services[0].Ports[0].Target = 0 }, "services.web.ports[0].target"},
		{"bad protocol", func(a *types.App) { a.Services[0].Ports[0].Protocol = "sctp" }, "services.web.ports[0].protocol"},
		{"bad host ip", func(a *types.App) { a.Services[0].Ports[0].HostIP = "localhost" }, "services.web.ports[0].host_ip"},
		{"bad port mode", func(a *types.App) { a.Services[0].Ports[0].Mode = "global" }, "services.web.ports[0].mode"},
		{"bad endpoint mode", func(a *types.App) { a.Services[0].EndpointMode = "vip" }, "services.web.endpoint_mode"},
		{"bad mesh", func(a *types.App) { a.Services[0].Mesh = "nearest" }, "services.web.mesh"},
		{"bad proxy protocol", func(a *types.App) { a.Services[0].ProxyProtocol = "v1" }, "services.web.proxy_protocol"},
		{"negative drain", func(a *types.App) { a.Services[0].DrainDelay = -1 }, "services.web.drain_delay"},
		{"alias two services claim", func(a *types.App) {
			a.Services[1].Networks = []types.NetworkAttachment{{Name: "default", Aliases: []string{"web"}}}
		}, "networks.default"},
		{"update config", func(a *types.App) {
			a.Services[0].UpdateConfig = &types.UpdateConfig{Parallelism: new(2), Order: types.OrderStartFirst, FailureAction: types.FailureRollback}
		}, ""},
		{"bad update order", func(a *types.App) { a.Services[0].UpdateConfig = &types.UpdateConfig{Order: "any"} }, "services.web.update_config.order"},
		{"update ratio above 1", func(a *types.App) { a.Services[0].UpdateConfig = &types.UpdateConfig{MaxFailureRatio: 1.5} }, "services.web.update_config.max_failure_ratio"},
		{"negative parallelism", func(a *types.App) { a.Services[0].UpdateConfig = &types.UpdateConfig{Parallelism: new(-1)} }, "services.web.update_config.parallelism"},
		{"negative canary", func(a *types.App) { a.Services[0].Canary = &types.Canary{Count: -1} }, "services.web.canary.canary"},
		{"rollback that rolls back", func(a *types.App) {
			a.Services[0].RollbackConfig = &types.UpdateConfig{FailureAction: types.FailureRollback}
		}, "services.web.rollback_config.failure_action"},
		{"port twice", func(a *types.App) { a.Services[0].Ports = append(a.Services[0].Ports, a.Services[0].Ports[0]) }, "services.web.ports[1].published"},
		{"bad restart condition", func(a *types.App) { a.Services[0].RestartPolicy.Condition = "always" }, "services.web.restart_policy.condition"},
		{"bad healthcheck", func(a *types.App) { a.Services[0].Healthcheck = &types.Healthcheck{Test: []string{"curl"}} }, "services.web.healthcheck.test"},
		{"depends on missing", func(a *types.App) { a.Services[1].DependsOn[0].Service = "db" }, "services.job.depends_on[0]"},
		{"bad condition", func(a *types.App) { a.Services[1].DependsOn[0].Condition = "ready" }, "services.job.depends_on[0].condition"},
		{"cycle", func(a *types.App) {
			a.Services[0].DependsOn = []types.Dependency{{Service: "job", Condition: types.ConditionStarted, Required: true}}
		}, "services.web.depends_on"},
		{"undefined network", func(a *types.App) { a.Services[0].Networks[0].Name = "back" }, "services.web.networks[0]"},
		{"undefined volume", func(a *types.App) { a.Services[0].Mounts[0].Source = "logs" }, "services.web.volumes[0].source"},
		{"relative bind", func(a *types.App) {
			a.Services[0].Mounts[0] = types.Mount{Type: types.MountBind, Source: "./x", Target: "/x"}
		}, "services.web.volumes[0].source"},
		{"relative target", func(a *types.App) { a.Services[0].Mounts[0].Target = "data" }, "services.web.volumes[0].target"},
		{"undefined secret", func(a *types.App) { a.Services[0].Secrets[0].Source = "other" }, "services.web.secrets[0].source"},
		{"secret too large", func(a *types.App) { a.Secrets["key"].Data = make([]byte, types.MaxSecretSize+1) }, "secrets.key"},
		{"reservation over limit", func(a *types.App) {
			a.Services[0].Resources = types.Resources{Limits: types.ResourceAmounts{MemoryBytes: 1 << 20}, Reservations: types.ResourceAmounts{MemoryBytes: 2 << 20}}
		}, "services.web.resources.reservations.memory"},
		{"bad stop signal", func(a *types.App) { a.Services[0].StopSignal = "TERM please" }, "services.web.stop_signal"},
		{"constraint typo", func(a *types.App) {
			a.Services[0].Placement.Constraints = []string{"node.role==worker", "node.lables.zone==a"}
		}, "services.web.placement.constraints[1]"},
		{"constraint without operator", func(a *types.App) { a.Services[0].Placement.Constraints = []string{"node.role=worker"} }, "services.web.placement.constraints[0]"},
		{"preference typo", func(a *types.App) { a.Services[0].Placement.Preferences = []string{"node.label.zone"} }, "services.web.placement.preferences[0]"},
		{"duplicate service", func(a *types.App) { a.Services[1].Name = "web"; a.Services[1].DependsOn = nil }, "services.web"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := validApp()
			tc.change(a)
			err := validateApp(a)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid app refused: %v", err)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an API error for %s", err, tc.field)
			}
			if ae.status != 400 || ae.field != tc.field || !strings.HasPrefix(ae.msg, tc.field+": ") {
				t.Fatalf("got %d field %q msg %q, want 400 naming %q", ae.status, ae.field, ae.msg, tc.field)
			}
		})
	}
}

// TestValidateNeverChangesTheApp: validation reads; defaults are
// applyAppDefaults' job, so what is stored never depends on which checks ran.
func TestValidateNeverChangesTheApp(t *testing.T) {
	for _, a := range []*types.App{validApp(), func() *types.App {
		a := validApp()
		a.Services[0].Placement.Constraints = []string{"node.lables.zone==a"}
		return a
	}()} {
		before := validApp()
		before.Services[0].Placement = a.Services[0].Placement
		_ = validateApp(a)
		if !reflect.DeepEqual(a, before) {
			t.Fatalf("validateApp changed the app:\n got %+v\nwant %+v", a.Services[0], before.Services[0])
		}
	}
}

func TestApplyAppDefaults(t *testing.T) {
	a := validApp()
	applyAppDefaults(a)
	if a.Services[0].Mode != types.ModeReplicated || a.Services[0].RestartPolicy.Condition != types.RestartOnFailure {
		t.Fatalf("defaults not filled: mode %q restart %q", a.Services[0].Mode, a.Services[0].RestartPolicy.Condition)
	}
	if err := validateApp(a); err != nil {
		t.Fatal(err)
	}
}

func TestValidateStatuses(t *testing.T) {
	long := strings.Repeat("x", types.MaxProgress+1)
	tests := []struct {
		name   string
		status types.TaskStatus
		field  string // "" for valid
	}{
		{"progress", types.TaskStatus{TaskID: "t", State: types.TaskStarting, Progress: "pulling image web: 1 of 2 layers"}, ""},
		{"progress too long", types.TaskStatus{TaskID: "t", State: types.TaskStarting, Progress: long}, "tasks[0].progress"},
		{"no task", types.TaskStatus{State: types.TaskStarting}, "tasks[0].task_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateStatuses([]types.TaskStatus{tt.status})
			var ae *apiError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.field != "" && (!errors.As(err, &ae) || ae.field != tt.field):
				t.Errorf("err = %v, want a 400 naming %s", err, tt.field)
			}
		})
	}
}
