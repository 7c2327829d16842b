//go:build !linux

package agent

import "net"

// freeBind is a plain ListenConfig where IP_FREEBIND does not exist: the
// gateway must be up before its DNS socket opens (the next map retries).
func freeBind() *net.ListenConfig { return &net.ListenConfig{} }
