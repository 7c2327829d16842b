package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct{ shell, want string }{
		{"bash", "__start_berth"},
		{"zsh", "#compdef berth"},
		{"fish", "complete -c berth"},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			var out, errb bytes.Buffer
			e := newEnv(&out, &errb)
			if code := run(context.Background(), []string{"completion", tc.shell}, e); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Fatalf("%s script lacks %q", tc.shell, tc.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"completion", "tcsh"}, newEnv(&out, &errb)); code == 0 {
		t.Fatal("completion tcsh succeeded; want a refusal")
	}
}
