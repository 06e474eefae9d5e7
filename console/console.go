// Package console is Myriad's web console: static pages, embedded in the
// binary, that read and steer runs through the public HTTP API only (the
// same routes as any client, with the same token). No build step: plain
// HTML, CSS and JavaScript modules, and no CDN.
//
// myriad serve mounts it at / (the pages' files under /console/).
package console

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the console: index.html at "/", its files under
// "/console/".
func Handler() http.Handler {
	static, _ := fs.Sub(files, "static")
	assets := http.StripPrefix("/console/", http.FileServer(http.FS(static)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The pages hold no secret; the token a person types stays in
		// their browser's session storage. No other site may frame them.
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, static, "index.html")
			return
		}
		assets.ServeHTTP(w, r)
	})
}
