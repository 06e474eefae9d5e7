// Package outbound holds the HTTP client Myriad uses for calls it makes to
// models and tools. Agents run many calls at once against few hosts, and the
// standard library keeps only two idle connections per host by default, so
// under load most calls would dial a new connection; this client keeps enough.
package outbound

import (
	"net/http"
	"time"
)

// MaxIdlePerHost is how many idle connections are kept to one host.
const MaxIdlePerHost = 1024

var client = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * MaxIdlePerHost
	t.MaxIdleConnsPerHost = MaxIdlePerHost
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}()

// Client returns the shared client. Callers set timeouts per request.
func Client() *http.Client { return client }
