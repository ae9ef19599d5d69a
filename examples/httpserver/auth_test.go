package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestAuthOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: testToken, noRun: true})
	job := e.createTranscription("tone:1s")
	id := job.ID.String()
	routes := []struct{ method, path, body string }{
		{"GET", "/healthz", ""},
		{"POST", "/api/transcribe", `{"audio_url":"tone:1s"}`},
		{"POST", "/api/jobs", `{"kind":"echo"}`},
		{"GET", "/api/jobs", ""},
		{"GET", "/api/jobs/" + id, ""},
		{"POST", "/api/jobs/" + id + "/cancel", ""},
		{"GET", "/api/jobs/" + id + "/events", ""},
		{"GET", "/ws/jobs/" + id, ""},
		{"GET", "/api/jobs/abc", ""},      // even bad input is 401 first
		{"DELETE", "/api/jobs/" + id, ""}, // and wrong methods
		{"GET", "/no/such/route", ""},     // and unknown routes
	}
	for _, creds := range [][]string{
		nil,
		{"Authorization", "Bearer wrong-token-0123456789abc"},
		{"Authorization", "Bearer " + testToken[:len(testToken)-1]},
		{"Authorization", "Basic " + testToken},
		{"Authorization", testToken},
		{"Cookie", authCookie + "=nope"},
	} {
		for _, r := range routes {
			res, body := e.do(r.method, r.path, r.body, creds...)
			requireError(t, res, body, http.StatusUnauthorized, codeUnauthorized)
			require.Equal(t, `Bearer realm="jobs"`, res.Header.Get("WWW-Authenticate"))
			require.NotContains(t, string(body), testToken)
		}
	}
	_, res, err := e.dialWS(id, nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "the upgrade needs the token too")

	ok := []string{"Authorization", "Bearer " + testToken}
	res2, body := e.do("GET", "/api/jobs/"+id, "", ok...)
	require.Equal(t, http.StatusOK, res2.StatusCode, "body: %s", body)
	res2, _ = e.do("GET", "/api/jobs/"+id, "", "Authorization", "bearer  "+testToken)
	require.Equal(t, http.StatusOK, res2.StatusCode, "the scheme is case-insensitive")
	c, _, err := e.dialWS(id, http.Header{"Authorization": {"Bearer " + testToken}})
	require.NoError(t, err)
	c.CloseNow()

	// The dashboard shell is public; it holds no data.
	for _, p := range []string{"/", "/static/app.js", "/static/style.css"} {
		res, _ := e.do("GET", p, "")
		require.Equal(t, http.StatusOK, res.StatusCode, p)
	}
}

func TestLoginCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: testToken, noRun: true})
	res, body := e.do("POST", "/api/login", `{"token":"wrong"}`)
	requireError(t, res, body, http.StatusUnauthorized, codeUnauthorized)
	require.Empty(t, res.Cookies())
	res, body = e.do("POST", "/api/login", `{"token":"x","extra":1}`)
	requireError(t, res, body, http.StatusBadRequest, jobs.ErrInvalidArgument)

	res, _ = e.do("POST", "/api/login", `{"token":"`+testToken+`"}`)
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Len(t, res.Cookies(), 1)
	ck := res.Cookies()[0]
	require.Equal(t, authCookie, ck.Name)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)

	cookie := []string{"Cookie", ck.Name + "=" + ck.Value}
	res, body = e.do("GET", "/api/jobs", "", cookie...)
	require.Equal(t, http.StatusOK, res.StatusCode, "body: %s", body)
	job := e.createTranscription("tone:1s")
	c, _, err := e.dialWS(job.ID.String(), http.Header{"Cookie": {cookie[1]}})
	require.NoError(t, err, "browsers authenticate WebSockets with the cookie")
	c.CloseNow()

	// A cross-site page cannot use the cookie to change state.
	res, body = e.do("POST", "/api/jobs/"+job.ID.String()+"/cancel", "", append(cookie, "Sec-Fetch-Site", "cross-site")...)
	requireError(t, res, body, http.StatusForbidden, codeForbidden)

	res, _ = e.do("POST", "/api/logout", "")
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, -1, res.Cookies()[0].MaxAge)
}

func TestCrossOriginPostsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noRun: true, origins: []string{"https://app.example"}})
	id := uuid.NewString()
	for _, r := range []struct{ path, body string }{
		{"/api/transcribe", `{"audio_url":"tone:1s"}`},
		{"/api/jobs", `{"kind":"echo"}`},
		{"/api/jobs/" + id + "/cancel", ""},
		{"/api/login", `{"token":"x"}`},
	} {
		res, body := e.do("POST", r.path, r.body, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")
		requireError(t, res, body, http.StatusForbidden, codeForbidden)
		res, body = e.do("POST", r.path, r.body, "Origin", "https://evil.example") // older browsers: Origin only
		requireError(t, res, body, http.StatusForbidden, codeForbidden)
	}
	res, body := e.do("POST", "/api/transcribe", `{"audio_url":"tone:1s"}`, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusCreated, res.StatusCode, "body: %s", body)
	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"tone:1s"}`, "Sec-Fetch-Site", "cross-site", "Origin", "https://app.example")
	require.Equal(t, http.StatusCreated, res.StatusCode, "an allowed origin: %s", body)
	res, body = e.do("POST", "/api/transcribe", `{"audio_url":"tone:1s"}`, "Origin", strings.TrimSuffix(e.url, "/"))
	require.Equal(t, http.StatusCreated, res.StatusCode, "same origin: %s", body)
}

func TestAuthorizedComparesWholeToken(t *testing.T) {
	t.Parallel()
	s := &server{cfg: Config{AuthToken: testToken}}
	s.tokenHash = newServer(t.Context(), s.cfg, nil, nil).tokenHash
	for tok, want := range map[string]bool{
		testToken:                  true,
		testToken + "x":            false,
		testToken[:16]:             false,
		"":                         false,
		strings.ToUpper(testToken): false,
	} {
		r, err := http.NewRequest("GET", "/", nil)
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer "+tok)
		require.Equal(t, want, s.authorized(r), tok)
	}
	open := &server{}
	r, err := http.NewRequest("GET", "/", nil)
	require.NoError(t, err)
	require.True(t, open.authorized(r), "no token configured: open")
}
