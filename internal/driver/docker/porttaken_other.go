//go:build !linux

package docker

// listeningProcess cannot look up a port's holder off Linux.
func listeningProcess(string, int) string { return "" }
