package docker

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/driver"
	"github.com/berth-dev/berth/internal/types"
)

func specTask() *driver.TaskConfig {
	return &driver.TaskConfig{
		Task: &types.Task{ID: "abcdef0123456789", App: "shop", Service: "web", Slot: 2, ServiceVersion: 7},
		Service: &types.Service{
			Name:            "web",
			Labels:          map[string]string{"team": "a", LabelNode: "spoofed"},
			Env:             map[string]string{"B": "2", "A": "1"},
			Ports:           []types.Port{{Target: 80, Published: 8080, Protocol: "tcp", HostIP: "127.0.0.1"}, {Target: 53, Protocol: "udp"}},
			Expose:          []string{"9000"},
			Resources:       types.Resources{Limits: types.ResourceAmounts{NanoCPUs: 5e8, MemoryBytes: 64 << 20, Pids: 50}, Reservations: types.ResourceAmounts{MemoryBytes: 32 << 20}},
			Healthcheck:     &types.Healthcheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: time.Second, Retries: 3},
			StopGracePeriod: 1500 * time.Millisecond,
			StopSignal:      "SIGINT",
			Mounts: []types.Mount{
				{Type: types.MountVolume, Source: "data", Target: "/data"},
				{Type: types.MountVolume, Source: "ext", Target: "/ext"},
				{Type: types.MountVolume, Target: "/anon"},
				{Type: types.MountBind, Source: "/srv", Target: "/srv", ReadOnly: true},
				{Type: types.MountTmpfs, Target: "/tmp"},
			},
			Networks: []types.NetworkAttachment{{Name: "front", Aliases: []string{"www"}}, {Name: "back"}},
			DNS:      []string{"10.0.0.53"},
			Tmpfs:    []string{"/run:size=1m"},
		},
		Volumes: map[string]*types.Volume{"data": {Name: "data"}, "ext": {Name: "shared-ext", External: true}},
	}
}

func TestCreateOptions(t *testing.T) {
	opts, err := createOptions(specTask(), "n1", "img:1", map[string]string{"back": "id-back"}, []fileMount{{host: "/run/berth/n1/secrets/x/0-db", target: "/run/secrets/db"}})
	if err != nil {
		t.Fatal(err)
	}
	c, hc := opts.Config, opts.HostConfig
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", opts.Name, "shop-web-2-abcdef01"},
		{"image", c.Image, "img:1"},
		{"env sorted", c.Env, []string{"A=1", "B=2"}},
		{"berth label wins", c.Labels[LabelNode], "n1"},
		{"service label kept", c.Labels["team"], "a"},
		{"task label", c.Labels[LabelTask], "abcdef0123456789"},
		{"slot label", c.Labels[LabelSlot], "2"},
		{"version label", c.Labels[LabelVersion], "7"},
		{"grace label", c.Labels[LabelStopGrace], "1.5s"},
		{"compose project", c.Labels[labelComposeProject], "shop"},
		{"stop timeout rounds up", *c.StopTimeout, 2},
		{"stop signal", c.StopSignal, "SIGINT"},
		{"health test", c.Healthcheck.Test, []string{"CMD", "/app", "healthcheck"}},
		{"exposed", len(c.ExposedPorts), 3},
		{"restart policy", string(hc.RestartPolicy.Name), "no"},
		{"nano cpus", hc.NanoCPUs, int64(5e8)},
		{"memory", hc.Memory, int64(64 << 20)},
		{"reservation", hc.MemoryReservation, int64(32 << 20)},
		{"pids", *hc.PidsLimit, int64(50)},
		{"dns", hc.DNS, []netip.Addr{netip.MustParseAddr("10.0.0.53")}},
		{"tmpfs", hc.Tmpfs, map[string]string{"/run": "size=1m"}},
		{"network mode", string(hc.NetworkMode), "shop_front"},
		{"network by ID when known", networkRef(specTask(), "back", map[string]string{"back": "id-back"}), "id-back"},
		{"aliases", opts.NetworkingConfig.EndpointsConfig["shop_front"].Aliases, []string{"web", "www"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeVolume, Source: "shop_data", Target: "/data"},
		{Type: mount.TypeVolume, Source: "shared-ext", Target: "/ext"},
		{Type: mount.TypeVolume, Target: "/anon"},
		{Type: mount.TypeBind, Source: "/srv", Target: "/srv", ReadOnly: true},
		{Type: mount.TypeTmpfs, Target: "/tmp"},
		{Type: mount.TypeBind, Source: "/run/berth/n1/secrets/x/0-db", Target: "/run/secrets/db", ReadOnly: true},
	}
	if !reflect.DeepEqual(hc.Mounts, wantMounts) {
		t.Errorf("mounts = %+v\nwant %+v", hc.Mounts, wantMounts)
	}
	port, _ := network.PortFrom(80, network.TCP)
	want := []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}}
	if !reflect.DeepEqual(hc.PortBindings[port], want) || len(hc.PortBindings) != 1 {
		t.Errorf("port bindings = %v, want only 80/tcp -> %v", hc.PortBindings, want)
	}
}

func TestCreateOptionsRejectsBadAddresses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*types.Service)
	}{
		{"host ip", func(s *types.Service) { s.Ports = []types.Port{{Target: 1, Published: 1, HostIP: "localhost"}} }},
		{"dns", func(s *types.Service) { s.DNS = []string{"dns.example"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := specTask()
			tt.mutate(cfg.Service)
			if _, err := createOptions(cfg, "n1", "img", nil, nil); err == nil {
				t.Fatal("createOptions accepted an invalid address")
			}
		})
	}
}

func TestHealthConfigDisable(t *testing.T) {
	hc := healthConfig(&types.Healthcheck{Disable: true, Test: []string{"CMD", "x"}})
	if !reflect.DeepEqual(hc.Test, []string{"NONE"}) {
		t.Fatalf("disabled healthcheck test = %v, want [NONE]", hc.Test)
	}
	if healthConfig(nil) != nil {
		t.Fatal("no healthcheck must leave the image's own")
	}
}

// TestCreateOptionsOverlay: on the overlay the agent's DNS answers the
// service's names and its mesh the ingress ports, so Docker gets neither;
// the agent's resolver comes before the user's dns, and host ports are
// still Docker's.
func TestCreateOptionsOverlay(t *testing.T) {
	cfg := specTask()
	cfg.Overlay = true
	cfg.DNS = []string{"10.240.1.1"}
	cfg.Service.Ports = append(cfg.Service.Ports, types.Port{Target: 443, Published: 8443, Protocol: "tcp", Mode: types.PortHost})
	cfg.Service.ExtraHosts = []string{"db.local:10.0.0.9"}
	cfg.Service.Hostname = "web-host"
	opts, err := createOptions(cfg, "n1", "img:1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := opts.HostConfig
	wantDNS := []netip.Addr{netip.MustParseAddr("10.240.1.1"), netip.MustParseAddr("10.0.0.53")}
	if !reflect.DeepEqual(hc.DNS, wantDNS) {
		t.Errorf("dns = %v, want %v", hc.DNS, wantDNS)
	}
	if ep := opts.NetworkingConfig.EndpointsConfig["shop_front"]; len(ep.Aliases) != 0 {
		t.Errorf("aliases = %v, want none: the agent's DNS answers the service's names", ep.Aliases)
	}
	if ep := endpoint(cfg, cfg.Service.Networks[1]); len(ep.Aliases) != 0 {
		t.Errorf("second network's aliases = %v, want none", ep.Aliases)
	}
	host, _ := network.PortFrom(443, network.TCP)
	want := network.PortMap{host: {{HostPort: "8443"}}}
	if !reflect.DeepEqual(hc.PortBindings, want) {
		t.Errorf("port bindings = %v, want only the host-mode port %v", hc.PortBindings, want)
	}
	if opts.Config.Hostname != "web-host" || !reflect.DeepEqual(hc.ExtraHosts, cfg.Service.ExtraHosts) {
		t.Errorf("hostname %q, extra hosts %v: want them kept", opts.Config.Hostname, hc.ExtraHosts)
	}
}
