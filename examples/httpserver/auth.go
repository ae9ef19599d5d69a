package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// authorized reports whether r carries the token, as a bearer token or as
// the dashboard's cookie. Without a configured token everything is allowed.
// The comparison hashes both sides and compares in constant time, so it
// reveals neither the token nor its length.
func (s *server) authorized(r *http.Request) bool {
	if s.cfg.AuthToken == "" {
		return true
	}
	var got string
	if a := r.Header.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		got = strings.TrimSpace(tok)
	} else if c, err := r.Cookie(authCookie); err == nil {
		got = c.Value
	}
	if got == "" {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) == 1
}

// sameOrigin reports whether a browser request comes from a page of this
// server or an allowed origin. Requests without Origin (non-browser
// clients) pass; they are subject to the token like any other.
func (s *server) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if strings.EqualFold(a, u.Scheme+"://"+u.Host) {
			return true
		}
	}
	return false
}

// loginRequest is the body of POST /api/login.
type loginRequest struct {
	Token string `json:"token"`
}

// login checks a token typed into the dashboard and, when it is right,
// stores it in an HttpOnly, SameSite=Strict cookie, because browsers cannot
// add an Authorization header to EventSource or WebSocket requests. It is
// a state-changing POST, so CrossOriginProtection guards it.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, maxSmallBody, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.cfg.AuthToken == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := sha256.Sum256([]byte(req.Token))
	if subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) != 1 {
		s.fail(w, r, httpError(codeUnauthorized, ""))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: authCookie, Value: req.Token, Path: "/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// logout clears the cookie.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: authCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}
