// Package redact removes credentials from URLs before they reach an error, a
// tool result, a journal entry or a log.
//
// A model's base_url or a tool's url may carry user-info
// ("https://user:token@host/..."), which Go's HTTP client turns into Basic
// authentication. The same URL then turns up in transport errors (net/http
// masks only the password, as "user:***@"), in the errors SDKs format
// themselves, and in the messages Myriad writes. Everything that leaves a
// package that holds such a URL goes through [Text], [URL] or [Error] first.
//
// Only user-info is removed. Other secrets a URL may hold (an API key in the
// query string) are the caller's to judge, since most query strings are not
// secret and hiding them would make errors useless.
package redact

import (
	"net/url"
	"strings"
)

// URL returns raw without its user-info, keeping the scheme, host, path,
// query and fragment. A URL without user-info is returned exactly as given.
// Input that does not parse (a config typo, say) loses everything between
// "://" and the last "@", which may remove more than the user-info but
// never leaves part of it.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.Opaque == "" {
		if u.User == nil {
			// The parse agrees there is no user-info, but free text around
			// a URL may still hide one that Text finds.
			return Text(raw)
		}
		u.User = nil
		return Text(u.String())
	}
	// Unparsable, or opaque: "user:pass@host" parses as scheme "user" with
	// opaque data "pass@host".
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return Text(prefix + rest)
}

// Text returns s with the user-info removed from every URL in it: after each
// "://" (or ":\/\/", the way some JSON encoders write it), the run of
// characters that may form user-info and host is cut up to and including
// its last "@". That covers net/http's "user:***@" and percent-encoded
// user-info. Text that holds no URL with user-info is returned unchanged.
func Text(s string) string {
	if !strings.Contains(s, "@") {
		return s // the common case: nothing to look for
	}
	var b strings.Builder
	done := 0 // s[:done] is written to b, or dropped
	for i := 0; i < len(s); {
		n := separator(s[i:])
		if n == 0 {
			i++
			continue
		}
		start := i + n
		end, at := start, -1
		for end < len(s) && authority(s[end]) {
			if s[end] == ':' && separator(s[end:]) > 0 {
				break // another URL begins: it gets its own pass
			}
			if s[end] == '@' {
				at = end
			}
			end++
		}
		if at >= 0 {
			b.Grow(len(s))
			b.WriteString(s[done:start])
			done = at + 1
		}
		i = end
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// separator returns the length of the scheme separator s starts with, or 0.
func separator(s string) int {
	switch {
	case strings.HasPrefix(s, "://"):
		return 3
	case strings.HasPrefix(s, `:\/\/`):
		return 5
	}
	return 0
}

// authority reports whether c may appear in a URL's user-info or host as it
// is written in text: RFC 3986's user-info characters (unreserved,
// percent-encoded, sub-delims, ":"), "@", and, because configured URLs are
// not always valid ones, non-ASCII bytes and the backslash of escaped text.
// The characters that end an authority ("/", "?", "#"), whitespace and
// quotes end the run.
func authority(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("-._~%!$&'()*+,;=:@\\", c) >= 0
}

// Error returns err with its message passed through [Text]. The result
// unwraps to err, so errors.Is and errors.As still find what err holds; an
// error with nothing to remove is returned as it is. Note that errors.As
// reaches the original values, whose own fields are not redacted.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := Text(msg)
	if clean == msg {
		return err
	}
	return &redacted{msg: clean, err: err}
}

// redacted is an error whose message had credentials removed.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }
