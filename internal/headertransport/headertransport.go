// Package headertransport adds configured headers (authorization, say) to
// every request an HTTP client sends, for the SDK clients that take an
// *http.Client but no headers.
package headertransport

import "net/http"

// Client returns a client that sends headers with every request, over
// base's transport (nil: a default client). Without headers it returns
// base.
func Client(base *http.Client, headers map[string]string) *http.Client {
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
	c.Transport = transport{base: rt, headers: headers}
	return &c
}

type transport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.headers {
		r.Header.Set(k, v)
	}
	return t.base.RoundTrip(r)
}
