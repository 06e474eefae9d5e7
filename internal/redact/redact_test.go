package redact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"user and password", "http://alice:s3cret@127.0.0.1:8080/v1?x=1#f", "http://127.0.0.1:8080/v1?x=1#f"},
		{"user only (a token)", "https://sk-abc123@api.example.com/v1", "https://api.example.com/v1"},
		{"empty password", "https://alice:@example.com", "https://example.com"},
		{"percent-encoded", "https://al%40ice:p%2Fss@example.com/", "https://example.com/"},
		{"@ in password", "https://alice:p@ss@example.com/", "https://example.com/"},
		{"IPv6 host", "http://alice:pw@[::1]:4000/mcp", "http://[::1]:4000/mcp"},
		{"no user-info kept as written", "https://example.com/a%2Fb?q=a+b", "https://example.com/a%2Fb?q=a+b"},
		{"@ in the path is not user-info", "https://example.com/users/bob@corp.com", "https://example.com/users/bob@corp.com"},
		{"nested URL in the query", "https://example.com/cb?next=https://bob:pw@other.example/", "https://example.com/cb?next=https://other.example/"},
		{"unparsable: slash in password", "http://alice:pa/ss@host/v1", "http://host/v1"},
		{"unparsable: space in password", "http://alice:pa ss@host/v1", "http://host/v1"},
		{"unparsable: bad escape", "http://alice:s3cret@host/%zz", "http://host/%zz"},
		{"schemeless", "alice:s3cret@host:80", "host:80"},
		{"empty", "", ""},
		{"not a URL", "just words", "just words"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{
			"net/http error",
			`Post "http://alice:***@127.0.0.1:1234/v1/chat/completions": dial tcp 127.0.0.1:1234: connect: connection refused`,
			`Post "http://127.0.0.1:1234/v1/chat/completions": dial tcp 127.0.0.1:1234: connect: connection refused`,
		},
		{"plain", "at http://alice:s3cret@host/v1 and more", "at http://host/v1 and more"},
		{"two URLs", "from https://a:b@x.example to https://c:d@y.example.", "from https://x.example to https://y.example."},
		{"end of text", "url=https://tok@h", "url=https://h"},
		{"percent-encoded", "GET https://al%40ice:p%2Fss@h/x failed", "GET https://h/x failed"},
		{"quoted with %q", `base URL "http://alice:s3cret@h:1/v1" is bad`, `base URL "http://h:1/v1" is bad`},
		{"JSON-escaped slashes", `{"url":"https:\/\/alice:s3cret@h\/v1"}`, `{"url":"https:\/\/h\/v1"}`},
		{"URL right after another", "http://a://bob:pw@h/", "http://a://h/"},
		{"other schemes", "nats://u:p@n:4222 and postgres://u:p@db/x", "nats://n:4222 and postgres://db/x"},
		{"email is not a URL", "write to bob@example.com", "write to bob@example.com"},
		{"@ in the path stays", "https://h/users/bob@corp", "https://h/users/bob@corp"},
		{"no @ at all", "https://h/v1", "https://h/v1"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in); got != tt.want {
				t.Errorf("Text(%q)\n = %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestTextRealErrors runs Text over the errors net/http really produces for
// a URL with user-info, so a change in their format cannot slip by.
func TestTextRealErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, raw := range []string{
		"http://alice:s3cret@" + closed + "/v1",
		"http://alice@" + closed + "/v1",
		"http://al%3Aice:s3%40cret@" + closed + "/v1",
	} {
		t.Run(raw, func(t *testing.T) {
			_, err := http.Get(raw)
			if err == nil {
				t.Fatal("request to a closed port succeeded")
			}
			got := Text(err.Error())
			for _, secret := range []string{"alice", "s3cret", "al%3Aice", "s3%40cret", "***"} {
				if strings.Contains(got, secret) {
					t.Errorf("Text(%q) = %q, still holds %q", err, got, secret)
				}
			}
			if !strings.Contains(got, closed) {
				t.Errorf("Text(%q) = %q, lost the host", err, got)
			}
		})
	}
}

func TestError(t *testing.T) {
	cause := &fs.PathError{Op: "open", Path: "x", Err: fs.ErrNotExist}
	wrapped := fmt.Errorf("calling http://alice:s3cret@h/v1: %w", cause)
	tests := []struct {
		name    string
		err     error
		wantMsg string
		same    bool // the very error comes back
	}{
		{"nil", nil, "", true},
		{"nothing to remove", context.Canceled, "context canceled", true},
		{"credentials", wrapped, "calling http://h/v1: open x: file does not exist", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Error(tt.err)
			if tt.same {
				if got != tt.err {
					t.Fatalf("Error(%v) = %v, want the same error back", tt.err, got)
				}
				return
			}
			if got.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", got.Error(), tt.wantMsg)
			}
			if errors.Unwrap(got) != tt.err {
				t.Errorf("Unwrap = %v, want the original", errors.Unwrap(got))
			}
			if !errors.Is(got, fs.ErrNotExist) {
				t.Error("errors.Is no longer finds the cause")
			}
			var pe *fs.PathError
			if !errors.As(got, &pe) || pe != cause {
				t.Error("errors.As no longer finds the cause")
			}
			// Wrapping again keeps it redacted.
			if again := fmt.Errorf("outer: %w", got); strings.Contains(again.Error(), "s3cret") {
				t.Errorf("wrapped again: %q", again)
			}
		})
	}
}

// leak matches user-info Text should have removed: a scheme separator, then
// characters of an authority, then "@". It is written apart from the code
// under test, as a regular expression, so the two check each other.
var leak = regexp.MustCompile(`:(?://|\\/\\/)[A-Za-z0-9\-._~%!$&'()*+,;=:\\\x{80}-\x{10FFFF}]*@`)

func FuzzText(f *testing.F) {
	f.Add("", "alice:s3cret", "127.0.0.1:1234", `": dial tcp`)
	f.Add(`Post "http`, "alice:***", "h", "/v1/chat/completions")
	f.Add("x ", "al%40ice:p%2Fss", "[::1]:80", "?q=1")
	f.Add("://", "a@b", "c", "@d")
	f.Add("http://a:", "u", "h", `:\/\/v:w@x`)
	f.Add("é", "ü:pw", "host", "\xff")
	f.Fuzz(func(t *testing.T, prefix, userinfo, host, suffix string) {
		// Plant a URL whose user-info the fuzzer chooses, among text it
		// also chooses.
		in := prefix + "https://" + userinfo + "@" + host + suffix
		out := Text(in)
		if m := leak.FindString(out); m != "" {
			t.Fatalf("Text(%q) = %q: still holds user-info %q", in, out, m)
		}
		if Text(out) != out {
			t.Fatalf("Text is not idempotent on %q: %q then %q", in, out, Text(out))
		}
		// User-info of a plausible shape (every byte may appear in one)
		// must go, and nothing else: the text is what it would be had the
		// URL been written without it.
		if plausible(userinfo) {
			if want := Text(prefix + "https://" + host + suffix); out != want {
				t.Fatalf("Text(%q)\n = %q\nwant %q (the user-info %q removed)", in, out, want, userinfo)
			}
		}
		// URL must not panic, nor leave user-info behind.
		raw := "https://" + userinfo + "@" + host
		if got := URL(raw); leak.MatchString(got) {
			t.Fatalf("URL(%q) = %q: still holds user-info", raw, got)
		}
	})
}

// plausible reports whether s could be the user-info of a URL in text: not
// empty, and made of the bytes RFC 3986 allows there, "@", the backslash of
// escaped text and non-ASCII bytes (a URL someone typed).
func plausible(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 ||
			strings.IndexByte("-._~%!$&'()*+,;=:@\\", c) >= 0) {
			return false
		}
	}
	return true
}
