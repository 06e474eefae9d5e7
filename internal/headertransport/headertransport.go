// Package headertransport adds configured headers (authorization, say) to
// every request an HTTP client sends, for the SDK clients that take an
// *http.Client but no headers.
package headertransport

import (
	"net/http"
	"net/url"
)

// Client returns a client that sends headers with every request to the
// origin (scheme and host) of rawURL, over base's transport (nil: a default
// client). Requests elsewhere (an authorization server, a URL a remote
// document names) go without them: configured secrets reach only the
// server they were configured for. Without headers it returns base.
func Client(base *http.Client, rawURL string, headers map[string]string) *http.Client {
	if base == nil {
		base = &http.Client{}
	}
	if len(headers) == 0 {
		return base
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c := *base
	u, _ := url.Parse(rawURL)
	if u == nil {
		u = &url.URL{}
	}
	c.Transport = transport{base: rt, scheme: u.Scheme, host: u.Host, headers: headers}
	return &c
}

type transport struct {
	base         http.RoundTripper
	scheme, host string
	headers      map[string]string
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != t.scheme || r.URL.Host != t.host {
		return t.base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}
