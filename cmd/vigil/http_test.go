package main

import "testing"

// TestProcessHTTPAddr: --http-addr for vigil process: empty takes its
// default, off turns the server off, anything else is the address.
func TestProcessHTTPAddr(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"", "127.0.0.1:9464"},
		{"off", ""},
		{"0.0.0.0:9100", "0.0.0.0:9100"},
		{"127.0.0.1:0", "127.0.0.1:0"},
	} {
		var c Config
		c.HTTP.Addr = tc.flag
		if got := c.appConfig().HTTP.Addr; got != tc.want {
			t.Errorf("--http-addr %q: server on %q, want %q", tc.flag, got, tc.want)
		}
	}
}

// TestDemoHTTPAddr: vigil demo serves on a free port unless --http-addr
// names one, so that it never takes vigil process's default port.
func TestDemoHTTPAddr(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"", "127.0.0.1:0"},
		{"off", ""},
		{"127.0.0.1:9464", "127.0.0.1:9464"},
	} {
		var c Config
		c.HTTP.Addr = demoHTTPAddr(tc.flag)
		if got := c.appConfig().HTTP.Addr; got != tc.want {
			t.Errorf("vigil demo --http-addr %q: server on %q, want %q", tc.flag, got, tc.want)
		}
	}
}
