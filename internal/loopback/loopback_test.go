package loopback

import "testing"

func TestAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7443": true, "localhost:7443": true, "[::1]:7443": true, "127.1.2.3:0": true,
		"0.0.0.0:7443": false, ":7443": false, "10.0.0.5:7443": false, "example.org:7443": false, "127.0.0.1": false,
	} {
		if got := Addr(addr); got != want {
			t.Errorf("Addr(%q) = %v, want %v", addr, got, want)
		}
	}
}
