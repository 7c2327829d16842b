package cluster

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/test/cluster/harness"
)

// service is one exec service of a test app: the test app binary, on any
// free port so replicas never clash. The image is there only because the
// Compose loader wants one; the exec driver ignores it.
type service struct {
	name     string
	replicas int
	// deploy is extra YAML under deploy:, indented by six spaces.
	deploy string
}

// writeApp writes a Compose file of services running c's app binary and
// returns its path.
func writeApp(t *testing.T, c *harness.Cluster, project string, services ...service) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("name: " + project + "\nservices:\n")
	for _, s := range services {
		b.WriteString("  " + s.name + ":\n")
		b.WriteString("    x-berth-driver: exec\n")
		b.WriteString("    image: berth-test/unused-by-exec\n")
		b.WriteString("    command: [\"" + c.AppBin + "\"]\n")
		b.WriteString("    stop_grace_period: 2s\n")
		b.WriteString("    environment:\n      PORT: \"0\"\n      MESSAGE: " + s.name + "\n")
		b.WriteString("    deploy:\n")
		b.WriteString("      replicas: " + strconv.Itoa(s.replicas) + "\n")
		if s.deploy != "" {
			b.WriteString(s.deploy)
		}
	}
	dir := filepath.Join(c.Dir(), project)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
