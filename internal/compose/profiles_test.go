package compose

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestDisabledServices names the services the active profiles leave out,
// which up leaves as they run.
func TestDisabledServices(t *testing.T) {
	dir := writeFiles(t, map[string]string{"compose.yaml": `
services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
  tools:
    image: busybox
    profiles: [tools, debug]
`})
	tests := []struct {
		profiles []string
		want     []string
	}{
		{nil, []string{"debug", "tools"}},
		{[]string{"tools"}, []string{"debug"}},
		{[]string{"debug"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.profiles, ","), func(t *testing.T) {
			got, err := DisabledServices(context.Background(), Options{WorkDir: dir, Profiles: tt.profiles, Environ: []string{}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Errorf("disabled %v, want %v", got, tt.want)
			}
		})
	}
}
