// Package loopback tells loopback addresses apart: plaintext gRPC (and the
// tokens it carries) is allowed only there.
package loopback

import "net"

// Addr reports whether a host:port address names only the loopback
// interface ("localhost", 127.0.0.0/8 or ::1).
func Addr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
