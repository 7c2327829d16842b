// Package scripts holds the repository's shell scripts; its test checks
// how setup.sh gets root, with fake id and sudo commands, so nothing is
// installed.
package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeBin makes a directory of executable shell scripts (name -> body).
func fakeBin(t *testing.T, scripts map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runSetup(t *testing.T, bin string) (string, error) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command(bash, "setup.sh")
	// Only the fakes and the basic tools (dirname, printf); never sudo or
	// apt from the host.
	cmd.Env = []string{"PATH=" + bin + ":/nonexistent"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// TestSetupAsUserAsksSudo: run by a user, the script re-runs itself with
// sudo, so the README's one command works without typing sudo.
func TestSetupAsUserAsksSudo(t *testing.T) {
	bin := fakeBin(t, map[string]string{
		"id":   `echo 1000`,
		"sudo": `echo "sudo $*"; exit 0`,
	})
	out, err := runSetup(t, bin)
	if err != nil || !strings.Contains(out, "sudo --preserve-env=") || !strings.Contains(out, "setup.sh") {
		t.Fatalf("setup.sh as a user: %v\n%s", err, out)
	}
}

// TestSetupAsUserWithoutSudo: no sudo on the machine gives one sentence
// saying to run it as root, not "sudo: command not found".
func TestSetupAsUserWithoutSudo(t *testing.T) {
	out, err := runSetup(t, fakeBin(t, map[string]string{"id": `echo 1000`}))
	if err == nil || !strings.Contains(out, "run it as root") || strings.Contains(out, "not found") {
		t.Fatalf("setup.sh as a user without sudo: %v\n%s", err, out)
	}
}

// TestReadmeSetupLine: the README gives the command that works as root
// (where there may be no sudo) and as a user: the script itself.
func TestReadmeSetupLine(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(readme), "sudo scripts/setup.sh") {
		t.Error("README says sudo scripts/setup.sh, which fails where root has no sudo")
	}
	if !strings.Contains(string(readme), "\nscripts/setup.sh\n") {
		t.Error("README does not give the setup command scripts/setup.sh")
	}
}
