package netmesh

import (
	"strings"
	"testing"
)

func TestCheckNames(t *testing.T) {
	tests := []struct {
		name     string
		services []ServiceNames
		err      string // "" for valid; else a part of the error
	}{
		{"names and aliases", []ServiceNames{{Name: "web", Aliases: []string{"www", "www.shop.internal"}}, {Name: "db"}}, ""},
		{"an alias repeated by its own service", []ServiceNames{{Name: "web", Aliases: []string{"web", "www", "WWW"}}}, ""},
		{"alias is another service", []ServiceNames{{Name: "web", Aliases: []string{"db"}}, {Name: "db"}}, `service web: the name "db" is service db's`},
		{"alias claimed twice", []ServiceNames{{Name: "a", Aliases: []string{"x"}}, {Name: "b", Aliases: []string{"X"}}}, `service b: the name "X" is service a's`},
		{"bad service name", []ServiceNames{{Name: "we b"}}, `service "we b"`},
		{"bad alias", []ServiceNames{{Name: "web", Aliases: []string{"a..b"}}}, `alias "a..b" is not a DNS name`},
		{"slot shape", []ServiceNames{{Name: "web", Aliases: []string{"1.db"}}}, "has the shape"},
		{"tasks shape", []ServiceNames{{Name: "web", Aliases: []string{"tasks.db"}}}, "has the shape"},
	}
	for _, tc := range tests {
		err := CheckNames(tc.services)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.err)
		}
	}
}
