package api

import "net"

// IsLoopback reports whether hostPort's host is a loopback address or
// localhost: traffic to it never leaves the machine. It is the one rule for
// where the API may speak plain HTTP (a manager listening there) and where
// a client may send a token over it.
func IsLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
