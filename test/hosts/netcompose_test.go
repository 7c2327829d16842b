package hosts

import (
	"fmt"
	"strings"
)

// The network tests' apps. nt: a client on a1; web (VIP, 3 replicas) and
// webrr (dnsrr, 2) on a2 and a3; pub, publishing a TCP and a UDP port
// with PROXY v2, and publocal, publishing with x-berth-mesh: local, on a2
// only; backonly on a network of its own, on a2. nt2:
// other, an app of its own on a3.
const (
	netApp      = "nt"
	otherApp    = "nt2"
	frontKey    = netApp + "_front"
	backKey     = netApp + "_back"
	otherKey    = otherApp + "_default"
	pubTCP      = 18080
	pubUDP      = 19000
	pubLocal    = 18081
	appUDPPort  = 9000
	webReplicas = 3
)

// replica is the part every service of the test app shares: the image,
// the record directory (each replica writes there what it saw at SIGTERM,
// then closes its listener at once, as a plain server does: a request the
// mesh still sends it is refused and fails the client's loop) and the
// health check (every second, two failures in a row are unhealthy).
func replica(img, dir, message string) string {
	return fmt.Sprintf(`    image: %s
    volumes: ["%s:/rec"]
    environment:
      UDP_PORT: "%d"
      RECORD_DIR: /rec
      SIGTERM_LOOKUP: tasks.web.
      MESSAGE: %s
      UNHEALTHY_FILE: /unhealthy
    healthcheck: {test: ["CMD", "/app", "healthcheck"], interval: 1s, timeout: 5s, retries: 2}
    stop_grace_period: 10s
`, img, dir, appUDPPort, message)
}

// netCompose is the nt app; message is web's MESSAGE (a change of it
// rolls web out and nothing else).
func netCompose(img, dir, message string, webN int) string {
	r := replica(img, dir, "v1")
	var b strings.Builder
	b.WriteString("services:\n")
	fmt.Fprintf(&b, "  client:\n%s    networks: [front]\n    deploy: {placement: {constraints: [node.hostname==a1]}}\n", r)
	fmt.Fprintf(&b, "  web:\n%s    networks: [front]\n    deploy: {replicas: %d, placement: {constraints: [node.hostname!=a1]}}\n",
		replica(img, dir, message), webN)
	fmt.Fprintf(&b, "  webrr:\n%s    networks: [front]\n    deploy: {replicas: 2, endpoint_mode: dnsrr, placement: {constraints: [node.hostname!=a1]}}\n", r)
	fmt.Fprintf(&b, `  pub:
%s    networks: [front]
    ports: ["%d:8080", "%d:%d/udp"]
    x-berth-proxy-protocol: v2
    deploy: {placement: {constraints: [node.hostname==a2]}}
`, r, pubTCP, pubUDP, appUDPPort)
	fmt.Fprintf(&b, `  publocal:
%s    networks: [front]
    ports: ["%d:8080"]
    x-berth-mesh: local
    deploy: {placement: {constraints: [node.hostname==a2]}}
`, r, pubLocal)
	fmt.Fprintf(&b, "  backonly:\n%s    networks: [back]\n    deploy: {placement: {constraints: [node.hostname==a2]}}\n", r)
	b.WriteString("networks:\n  front: {}\n  back: {}\n")
	return b.String()
}

func otherCompose(img, dir string) string {
	return "services:\n  other:\n" + replica(img, dir, "other") + "    deploy: {placement: {constraints: [node.hostname==a3]}}\n"
}
