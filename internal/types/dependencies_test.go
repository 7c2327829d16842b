package types

import (
	"slices"
	"testing"
)

func TestDependencyCycle(t *testing.T) {
	app := func(deps map[string][]string, order ...string) *App {
		a := &App{}
		for _, name := range order {
			s := &Service{Name: name}
			for _, d := range deps[name] {
				s.DependsOn = append(s.DependsOn, Dependency{Service: d})
			}
			a.Services = append(a.Services, s)
		}
		return a
	}
	tests := []struct {
		name string
		app  *App
		want []string
	}{
		{"none", app(map[string][]string{"web": {"db"}}, "web", "db"), nil},
		{"two", app(map[string][]string{"a": {"b"}, "b": {"a"}}, "a", "b"), []string{"a", "b", "a"}},
		{"self", app(map[string][]string{"a": {"a"}}, "a"), []string{"a", "a"}},
		{"reached from outside", app(map[string][]string{"x": {"a"}, "a": {"b"}, "b": {"a"}}, "x", "a", "b"), []string{"a", "b", "a"}},
		{"missing dependency", app(map[string][]string{"a": {"gone"}}, "a"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.app.DependencyCycle(); !slices.Equal(got, tt.want) {
				t.Errorf("DependencyCycle = %v, want %v", got, tt.want)
			}
		})
	}
}
