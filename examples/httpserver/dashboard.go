package main

import (
	"embed"
	"net/http"
	"strings"
)

// dashboardFiles holds the dashboard: plain HTML, CSS and JavaScript, no
// build step.
//
//go:embed dashboard/index.html dashboard/app.js dashboard/queues.js dashboard/style.css
var dashboardFiles embed.FS

// contentSecurityPolicy allows only this origin's scripts, styles and
// connections (fetch and WebSocket).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// dashboard serves GET /: the page itself holds no data, it loads the jobs
// through the API (and asks for the token when the API says 401).
func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, dashboardFiles, "dashboard/index.html")
}

// static serves GET /static/{app.js,queues.js,style.css}; anything else is
// 404.
func (s *server) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	if name != "app.js" && name != "queues.js" && name != "style.css" {
		s.fail(w, r, httpError(codeRouteNotFound, ""))
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, dashboardFiles, "dashboard/"+name)
}
