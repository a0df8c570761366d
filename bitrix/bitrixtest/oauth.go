package bitrixtest

import (
	"crypto/subtle"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// grant is what an access token stands for: a user of a portal, for the installed app.
type grant struct {
	portal  *Portal
	userID  int
	expires time.Time
	gen     uint64 // portal's token generation at issue; older ones answer expired_token
	install uint64 // portal's install generation at issue; older ones are unknown
	revoked atomic.Bool
	// hops is the event session counter of tokens minted for event deliveries: a change
	// made with such a token fires events whose tokens carry one hop less (0 = none).
	hops int
}

// refreshGrant is what a refresh token stands for; it is used at most once.
type refreshGrant struct {
	portal  *Portal
	userID  int
	access  string
	install uint64
	expires time.Time
}

// codeGrant is an authorization code of the full OAuth flow, valid 30 seconds.
type codeGrant struct {
	portal  *Portal
	userID  int
	expires time.Time
}

// tokenStore holds every token the OAuth server issued.
type tokenStore struct {
	mu      sync.RWMutex // guards the maps and issued
	issued  int
	access  map[string]*grant
	refresh map[string]*refreshGrant
	codes   map[string]*codeGrant
}

func (t *tokenStore) init() {
	t.access = make(map[string]*grant)
	t.refresh = make(map[string]*refreshGrant)
	t.codes = make(map[string]*codeGrant)
}

// prune forgets access tokens a day past their expiry (they then answer invalid_token,
// as long-dead tokens do) and expired refresh tokens. Callers hold t.mu.
func (t *tokenStore) prune(now time.Time) {
	for k, g := range t.access {
		if now.Sub(g.expires) > 24*time.Hour {
			delete(t.access, k)
		}
	}
	for k, r := range t.refresh {
		if now.After(r.expires) {
			delete(t.refresh, k)
		}
	}
	for k, c := range t.codes {
		if now.After(c.expires) {
			delete(t.codes, k)
		}
	}
}

func (t *tokenStore) lookup(access string) *grant {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.access[access]
}

// Token is an access/refresh pair as the OAuth server issues it.
type Token struct {
	AccessToken  string
	RefreshToken string
	Expires      time.Time
	UserID       int
}

// issue mints an access token (and a refresh token when withRefresh) for a user.
func (s *Server) issue(p *Portal, userID int, withRefresh bool, hops int) Token {
	now := time.Now()
	g := &grant{
		portal:  p,
		userID:  userID,
		expires: now.Add(s.opts.AccessTTL),
		gen:     p.tokenGen.Load(),
		install: p.installGen.Load(),
		hops:    hops,
	}
	tok := Token{AccessToken: randomHex(35), Expires: g.expires, UserID: userID}
	s.tokens.mu.Lock()
	defer s.tokens.mu.Unlock()
	if s.tokens.issued++; s.tokens.issued%4096 == 0 {
		s.tokens.prune(now)
	}
	s.tokens.access[tok.AccessToken] = g
	if withRefresh {
		tok.RefreshToken = randomHex(35)
		s.tokens.refresh[tok.RefreshToken] = &refreshGrant{
			portal: p, userID: userID, access: tok.AccessToken, install: g.install,
			expires: now.Add(180 * 24 * time.Hour),
		}
	}
	return tok
}

// checkAccess finds the grant of an access token, or the error the portal answers.
func (s *Server) checkAccess(p *Portal, token string) (*grant, *restError) {
	if token == "" {
		return nil, errNoAuth
	}
	g := s.tokens.lookup(token)
	if g == nil || (p != nil && g.portal != p) || g.install != g.portal.installGen.Load() {
		return nil, errInvalidToken
	}
	if g.revoked.Load() || g.gen != g.portal.tokenGen.Load() || time.Now().After(g.expires) {
		return nil, errExpiredToken
	}
	if !g.portal.userActive(g.userID) {
		return nil, newError(401, "authorization_error", "Unable to authorize user")
	}
	return g, nil
}

// tokenResponse is the OAuth server's answer to a successful token request.
func (s *Server) tokenResponse(p *Portal, tok Token) map[string]any {
	return map[string]any{
		"access_token":    tok.AccessToken,
		"refresh_token":   tok.RefreshToken,
		"expires":         tok.Expires.Unix(),
		"expires_in":      int(s.opts.AccessTTL / time.Second),
		"scope":           p.appScope(),
		"domain":          s.oauthHost(),
		"server_endpoint": s.OAuthURL() + "/rest/",
		"client_endpoint": p.ClientEndpoint(),
		"member_id":       p.MemberID(),
		"status":          "L",
		"user_id":         tok.UserID,
	}
}

// serveToken is the OAuth server's /oauth/token/: GET with a query or POST with a form,
// grant_type refresh_token or authorization_code.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	status, body := s.token(r)
	code, _ := body["error"].(string)
	member, _ := body["member_id"].(string)
	s.reqs.add(Request{MemberID: member, Method: "oauth.token", Status: status, Error: code,
		At: time.Now()})
	writeJSONResponse(w, status, body)
}

func (s *Server) token(r *http.Request) (int, map[string]any) {
	if s.faults.draw(func(f *Faults) float64 { return f.OAuthError5xx }) {
		return oauthError(http.StatusServiceUnavailable, "temporarily_unavailable",
			"Service temporarily unavailable")
	}
	if err := r.ParseForm(); err != nil {
		return oauthError(http.StatusBadRequest, "invalid_request", "Malformed request")
	}
	id, secret := r.Form.Get("client_id"), r.Form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bid, bsecret
	}
	if id != s.opts.ClientID {
		// The real server answers an unknown client_id with HTTP 200 and an error body.
		return oauthError(http.StatusOK, "wrong_client", "Wrong client")
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) != 1 {
		return oauthError(http.StatusBadRequest, "invalid_client", "Invalid client credentials")
	}
	switch r.Form.Get("grant_type") {
	case "refresh_token":
		return s.refreshGrant(r.Form.Get("refresh_token"))
	case "authorization_code":
		return s.codeGrant(r.Form.Get("code"))
	default:
		return oauthError(http.StatusBadRequest, "invalid_request", "Unsupported grant_type")
	}
}

func (s *Server) refreshGrant(refresh string) (int, map[string]any) {
	if refresh == "" {
		return oauthError(http.StatusBadRequest, "invalid_request",
			`No "refresh_token" parameter found`)
	}
	s.tokens.mu.Lock()
	rg := s.tokens.refresh[refresh]
	delete(s.tokens.refresh, refresh)
	var old *grant
	if rg != nil {
		old = s.tokens.access[rg.access]
	}
	s.tokens.mu.Unlock()
	if rg == nil || rg.install != rg.portal.installGen.Load() || time.Now().After(rg.expires) {
		return oauthError(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
	}
	if rg.portal.isDeleted() {
		return oauthError(http.StatusNotFound, "PORTAL_DELETED", "Portal was deleted")
	}
	if rg.portal.paymentRequired.Load() {
		return oauthError(http.StatusUnauthorized, "PAYMENT_REQUIRED", "Payment required")
	}
	if old != nil && s.opts.RevokeOnRefresh {
		old.revoked.Store(true)
	}
	tok := s.issue(rg.portal, rg.userID, true, 0)
	return http.StatusOK, s.tokenResponse(rg.portal, tok)
}

func (s *Server) codeGrant(code string) (int, map[string]any) {
	s.tokens.mu.Lock()
	cg := s.tokens.codes[code]
	delete(s.tokens.codes, code)
	s.tokens.mu.Unlock()
	if cg == nil || time.Now().After(cg.expires) {
		return oauthError(http.StatusBadRequest, "invalid_grant", "Invalid authorization code")
	}
	tok := s.issue(cg.portal, cg.userID, true, 0)
	return http.StatusOK, s.tokenResponse(cg.portal, tok)
}

func oauthError(status int, code, desc string) (int, map[string]any) {
	return status, map[string]any{"error": code, "error_description": desc}
}

// serveOAuthREST is the OAuth server's REST endpoint; it knows only app.info.
func (s *Server) serveOAuthREST(w http.ResponseWriter, r *http.Request) {
	if allowCORS(w, r) {
		return
	}
	started := time.Now()
	method := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/rest/"), ".json"))
	in, perr := readParams(r)
	req := Request{Method: method, At: started}
	var status int
	var body any
	switch {
	case perr != nil:
		status, body = errorBody(perr)
	case method != "app.info":
		status, body = errorBody(errMethodNotFound)
	default:
		g, rerr := s.checkAccess(nil, accessToken(r, in))
		if rerr != nil {
			status, body = errorBody(rerr)
			break
		}
		req.MemberID = g.portal.MemberID()
		status = http.StatusOK
		body = map[string]any{"result": s.oauthAppInfo(g), "time": timeObject(started, nil)}
	}
	if m, ok := body.(map[string]any); ok {
		req.Error, _ = m["error"].(string)
	}
	req.Status = status
	s.reqs.add(req)
	writeJSONResponse(w, status, body)
}

// oauthAppInfo is app.info as the OAuth server answers it (not the portal's shape).
func (s *Server) oauthAppInfo(g *grant) map[string]any {
	p := g.portal
	app := p.appSnapshot()
	return map[string]any{
		"client_id": s.opts.ClientID,
		"scope":     app.Scope,
		"expires":   g.expires.Format(time.RFC3339),
		"user_id":   g.userID,
		"install": map[string]any{
			"installed":       app.installed,
			"version":         app.version,
			"status":          "L",
			"scope":           app.Scope,
			"domain":          p.Domain(),
			"uri":             p.portalURL(),
			"client_endpoint": p.ClientEndpoint(),
			"member_id":       p.MemberID(),
			"member_type":     "PORTAL",
		},
	}
}

// AuthorizeCode returns an authorization code for the full OAuth flow, as the portal's
// /oauth/authorize/ page hands it to the redirect URI; it is valid for 30 seconds.
func (p *Portal) AuthorizeCode(userID int) string {
	code := randomHex(16)
	s := p.srv
	s.tokens.mu.Lock()
	s.tokens.codes[code] = &codeGrant{portal: p, userID: userID,
		expires: time.Now().Add(30 * time.Second)}
	s.tokens.mu.Unlock()
	return code
}

func writeJSONResponse(w http.ResponseWriter, status int, body any) {
	data, err := appendJSON(make([]byte, 0, 512), body)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":"INTERNAL_SERVER_ERROR",` +
			`"error_description":"Internal server error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// discard reads what is left of a body so the connection can be reused.
func discard(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
