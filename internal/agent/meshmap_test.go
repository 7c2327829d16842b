package agent

import (
	"net/netip"
	"os"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/internal/netmesh"
	"github.com/berth-dev/berth/internal/types"
)

// testMap: app shop with web (VIP, alias www, on front and back, replicas
// on n1 and n2, publishing 8080 over the mesh and 8443 in host mode), api
// (dnsrr on back, local-only mesh with PROXY v2 on UDP 5353), and a
// service of app blog on an external network.
func testMap() *api.NetworkMap {
	return &api.NetworkMap{
		Networks: []api.MapNetwork{
			{Key: "shop_front", App: "shop", Subnet: "10.240.0.0/18", Slices: map[string]string{"n1": "10.240.1.0/24", "n2": "10.240.2.0/24"}},
			{Key: "shop_back", App: "shop", Subnet: "10.240.64.0/18", Slices: map[string]string{"n2": "10.240.65.0/24"}},
			{Key: "shared", Subnet: "10.240.128.0/18", Slices: map[string]string{"n1": "10.240.129.0/24"}},
		},
		Nodes: []api.MapNode{{ID: "n1", Underlay: "192.0.2.1", Ready: true}, {ID: "n2", Underlay: "192.0.2.2", Ready: true}},
		Services: []api.MapService{
			{
				App: "shop", Name: "web",
				Networks: []api.MapAttachment{
					{Network: "shop_front", VIP: "10.240.0.2", Aliases: []string{"www", "bad alias"}},
					{Network: "shop_back", VIP: "10.240.64.2"},
				},
				Ports: []api.MapPort{
					{Target: 80, Published: 8080, Protocol: "tcp"},
					{Target: 443, Published: 8443, Protocol: "tcp", Mode: types.PortHost},
					{Target: 9000, Protocol: "tcp"},
				},
				Endpoints: []api.MapEndpoint{
					{TaskID: "t1", Slot: 1, NodeID: "n1", Addresses: map[string]string{"shop_front": "10.240.1.5"}},
					{TaskID: "t2", Slot: 2, NodeID: "n2", Addresses: map[string]string{"shop_front": "10.240.2.5", "shop_back": "10.240.65.5"}},
				},
			},
			{
				App: "shop", Name: "api", EndpointMode: types.EndpointDNSRR, Mesh: types.MeshLocal, ProxyProtocol: types.ProxyV2,
				Networks: []api.MapAttachment{{Network: "shop_back"}},
				Ports:    []api.MapPort{{Target: 53, Published: 5353, Protocol: "udp", HostIP: "127.0.0.1"}},
				Endpoints: []api.MapEndpoint{
					{TaskID: "t3", Slot: 1, NodeID: "n2", Addresses: map[string]string{"shop_back": "10.240.65.7"}},
				},
			},
			{App: "blog", Name: "feed", Networks: []api.MapAttachment{{Network: "shared", VIP: "10.240.128.9"}, {Network: "blog_default"}}},
			{App: "blog", Name: "bad.name", Networks: []api.MapAttachment{{Network: "shared", VIP: "10.240.128.10"}}},
			{App: "blog", Name: "clash", Ports: []api.MapPort{{Target: 1, Published: 8080, Protocol: "tcp"}}},
		},
	}
}

func TestMeshView(t *testing.T) {
	a := netip.MustParseAddr
	v, bad := meshView(testMap())
	web := func(vip string, reps ...netmesh.Replica) netmesh.Service {
		return netmesh.Service{Name: "web", App: "shop", Mode: netmesh.ModeVIP, VIP: a(vip), Replicas: reps}
	}
	front := web("10.240.0.2", netmesh.Replica{Slot: 1, Addr: a("10.240.1.5")}, netmesh.Replica{Slot: 2, Addr: a("10.240.2.5")})
	front.Aliases = []string{"www"}
	tests := []struct {
		name      string
		got, want any
	}{
		{"networks in map order", len(v.Networks), 3},
		{"web on front, its alias, replicas on front", v.Networks[0].Services, []netmesh.Service{front}},
		{"back: web's VIP there, dnsrr api", v.Networks[1].Services, []netmesh.Service{
			web("10.240.64.2", netmesh.Replica{Slot: 2, Addr: a("10.240.65.5")}),
			{Name: "api", App: "shop", Mode: netmesh.ModeDNSRR, Replicas: []netmesh.Replica{{Slot: 1, Addr: a("10.240.65.7")}}},
		}},
		{"an invalid name is left out, the rest kept", v.Networks[2].Services, []netmesh.Service{
			{Name: "feed", App: "blog", Mode: netmesh.ModeVIP, VIP: a("10.240.128.9")},
		}},
		{"members on all their networks", v.Members, []netmesh.Member{
			{Addr: a("10.240.1.5"), App: "shop", Networks: []string{"shop_front"}},
			{Addr: a("10.240.2.5"), App: "shop", Networks: []string{"shop_front", "shop_back"}},
			{Addr: a("10.240.65.5"), App: "shop", Networks: []string{"shop_front", "shop_back"}},
			{Addr: a("10.240.65.7"), App: "shop", Networks: []string{"shop_back"}},
		}},
		{"subnets for askers not yet serving", v.Subnets, []netmesh.Subnet{
			{Prefix: netip.MustParsePrefix("10.240.0.0/18"), Network: "shop_front", App: "shop"},
			{Prefix: netip.MustParsePrefix("10.240.64.0/18"), Network: "shop_back", App: "shop"},
			{Prefix: netip.MustParsePrefix("10.240.128.0/18"), Network: "shared"},
		}},
		{"the bad alias and the bad name reported", len(bad), 2},
	}
	for _, tc := range tests {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, tc.got, tc.want)
		}
	}
	if err := v.Validate(); err != nil {
		t.Errorf("the view does not validate: %v", err)
	}
}

func TestMeshViewVIPMissing(t *testing.T) {
	m := &api.NetworkMap{
		Networks: []api.MapNetwork{{Key: "n", Subnet: "10.240.0.0/18"}},
		Services: []api.MapService{{App: "a", Name: "s", Networks: []api.MapAttachment{{Network: "n"}},
			Endpoints: []api.MapEndpoint{{Slot: 1, Addresses: map[string]string{"n": "10.240.1.9"}}}}},
	}
	v, _ := meshView(m)
	if got := v.Networks[0].Services[0]; got.Mode != netmesh.ModeDNSRR || len(got.Replicas) != 1 {
		t.Errorf("a vip service with no VIP yet = %+v, want its replicas answered (dnsrr)", got)
	}
	if err := v.Validate(); err != nil {
		t.Errorf("the view does not validate: %v", err)
	}
}

func TestMeshRoutes(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		node string
		want []netmesh.Route
	}{
		{"n1", []netmesh.Route{
			{Proto: "tcp", Listen: ap("0.0.0.0:8080"), Backends: []netmesh.Backend{
				{Addr: ap("10.240.1.5:80"), Local: true}, {Addr: ap("10.240.2.5:80")},
			}},
			{Proto: "udp", Listen: ap("127.0.0.1:5353"), LocalOnly: true, ProxyProtocol: true, Backends: []netmesh.Backend{
				{Addr: ap("10.240.65.7:53")},
			}},
		}},
		{"n2", []netmesh.Route{
			{Proto: "tcp", Listen: ap("0.0.0.0:8080"), Backends: []netmesh.Backend{
				{Addr: ap("10.240.1.5:80")}, {Addr: ap("10.240.2.5:80"), Local: true},
			}},
			{Proto: "udp", Listen: ap("127.0.0.1:5353"), LocalOnly: true, ProxyProtocol: true, Backends: []netmesh.Backend{
				{Addr: ap("10.240.65.7:53"), Local: true},
			}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.node, func(t *testing.T) {
			got, bad := meshRoutes(testMap(), tc.node)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("routes:\n got %+v\nwant %+v", got, tc.want)
			}
			if len(bad) != 1 {
				t.Errorf("errors %v, want the one of blog/clash on 8080", bad)
			}
		})
	}
}

func TestNodeGateways(t *testing.T) {
	tests := []struct {
		node string
		want []netip.Addr
	}{
		{"n1", []netip.Addr{netip.MustParseAddr("10.240.1.1"), netip.MustParseAddr("10.240.129.1")}},
		{"n2", []netip.Addr{netip.MustParseAddr("10.240.2.1"), netip.MustParseAddr("10.240.65.1")}},
		{"n3", nil},
	}
	for _, tc := range tests {
		got, bad := nodeGateways(testMap(), tc.node)
		if !reflect.DeepEqual(got, tc.want) || len(bad) != 0 {
			t.Errorf("%s: gateways %v (errors %v), want %v", tc.node, got, bad, tc.want)
		}
	}
}

func TestServiceEnv(t *testing.T) {
	got := serviceEnv(testMap(), "shop")
	want := map[string]string{"BERTH_SERVICE_WEB_ADDR": "10.240.0.2"} // api is dnsrr: no VIP
	if !reflect.DeepEqual(got, want) {
		t.Errorf("env %v, want %v", got, want)
	}
	if got := envName("web-api.v2"); got != "WEB_API_V2" {
		t.Errorf("envName = %q", got)
	}
}

func TestNodeResolvers(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	conf := "# comment\nsearch example.test\nnameserver 127.0.0.53\nnameserver 10.0.0.2 # trailing\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	got := nodeResolvers(path)
	want := []string{"127.0.0.53:53", "10.0.0.2:53", "[fe80::1%eth0]:53"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolvers %v, want %v (a loopback stub kept: the agent asks from the host)", got, want)
	}
	if got := nodeResolvers(path + ".missing"); got != nil {
		t.Errorf("no resolv.conf: %v", got)
	}
}
