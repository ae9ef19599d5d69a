package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDashboardAssets(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true})
	res, body := e.do("GET", "/", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "text/html"))
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")
	for _, id := range []string{`id="start-form"`, `id="audio-url"`, `id="user"`, `id="jobs"`, `src="/static/app.js"`, `src="/static/queues.js"`, `href="/static/style.css"`} {
		require.Contains(t, string(body), id)
	}
	for path, ctype := range map[string]string{"/static/app.js": "text/javascript", "/static/queues.js": "text/javascript", "/static/style.css": "text/css"} {
		res, body := e.do("GET", path, "")
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), ctype), res.Header.Get("Content-Type"))
		require.NotEmpty(t, body)
	}
	for _, path := range []string{"/static/", "/static/index.html", "/static/../main.go", "/static/nope.js", "/index.html"} {
		res, body := e.do("GET", path, "")
		require.Contains(t, []int{http.StatusNotFound, http.StatusMovedPermanently}, res.StatusCode, "%s: %s", path, body)
	}
	res, body = e.do("GET", "/static/nope.js", "")
	requireError(t, res, body, http.StatusNotFound, codeRouteNotFound)
}
