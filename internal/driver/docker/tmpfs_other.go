//go:build !linux

package docker

import "errors"

func isTmpfs(string) bool { return false }

func mountTmpfs(string) error { return errors.New("tmpfs mounts need Linux") }
