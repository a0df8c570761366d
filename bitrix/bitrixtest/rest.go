package bitrixtest

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// restError is a REST error answer: {"error": code, "error_description": desc}.
type restError struct {
	status int
	code   string
	desc   string
	extra  map[string]any
}

func (e *restError) Error() string { return e.code + ": " + e.desc }

func newError(status int, code, desc string) *restError {
	return &restError{status: status, code: code, desc: desc}
}

var (
	errNoAuth         = newError(401, "NO_AUTH_FOUND", "Wrong authorization data")
	errInvalidToken   = newError(401, "invalid_token", "Unable to get application by token")
	errExpiredToken   = newError(401, "expired_token", "The access token provided has expired")
	errMethodNotFound = newError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
	errQueryLimit     = newError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
	errOverload       = newError(503, "OVERLOAD_LIMIT", "REST API is blocked due to overload.")
	errPortalDeleted  = newError(500, "PORTAL_DELETED", "Portal was deleted")
	errPayment        = newError(401, "PAYMENT_REQUIRED", "Payment required")
	errAccessDenied   = newError(403, "ACCESS_DENIED",
		"REST API is available only on commercial plans")
	errAdminRequired = newError(403, "ACCESS_DENIED",
		"Access denied! Administrator access rights required")
	errScope = newError(401, "insufficient_scope",
		"The request requires higher privileges than provided by the access token")
	errCRMNotFound = newError(400, "", "Not found")
	errCRMBadID    = newError(400, "", "ID is not defined or invalid.")
)

func errorBody(e *restError) (int, map[string]any) {
	body := map[string]any{"error": e.code, "error_description": e.desc}
	for k, v := range e.extra {
		body[k] = v
	}
	return e.status, body
}

// outcome is what a method returns: its result and, for lists, total and next.
type outcome struct {
	result any
	total  *int
	next   *int
}

// call is one REST method invocation, on its own or inside a batch.
type call struct {
	s      *Server
	p      *Portal
	g      *grant
	method string
	in     *obj
	batch  bool
}

// param returns a parameter, matched case-insensitively.
func (c *call) param(name string) any {
	v, _ := c.in.get(name)
	return v
}

// object returns an object parameter, or an empty one.
func (c *call) object(name string) *obj {
	if o, ok := c.param(name).(*obj); ok {
		return o
	}
	if l, ok := c.param(name).([]any); ok {
		o := newObj()
		for i, v := range l {
			o.set(str(i), v)
		}
		return o
	}
	return newObj()
}

// isAdmin reports whether the calling user may manage the app.
func (c *call) isAdmin() bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	u := c.p.user(c.g.userID)
	return u != nil && u.Admin
}

type methodFunc func(c *call) (outcome, *restError)

// methodSpec is a REST method: the scope it needs ("" for none) and its body.
type methodSpec struct {
	scope string
	fn    methodFunc
}

// scopeAllows reports whether the app's comma-separated scope grants need.
func scopeAllows(scope, need string) bool {
	if need == "" {
		return true
	}
	for _, s := range strings.Split(scope, ",") {
		s = strings.TrimSpace(s)
		if s == need || (need == "user" && (s == "user_brief" || s == "user_basic")) {
			return true
		}
	}
	return false
}

// servePortal answers everything under /portal/<name>/: REST calls and the portal page.
func (s *Server) servePortal(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/portal/")
	seg, tail, _ := strings.Cut(rest, "/")
	p, moved := s.portalByPath(seg)
	if p == nil {
		http.NotFound(w, r)
		return
	}
	if moved {
		target := s.url + "/portal/" + p.path() + "/" + tail
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.WriteHeader(http.StatusFound)
		s.reqs.add(Request{MemberID: p.memberID, Method: restMethod(tail), Status: http.StatusFound,
			At: time.Now()})
		return
	}
	if !strings.Contains(rest, "/") {
		http.Redirect(w, r, "/portal/"+seg+"/", http.StatusMovedPermanently)
		return
	}
	if method, ok := strings.CutPrefix(tail, "rest/"); ok {
		if allowCORS(w, r) {
			return
		}
		s.serveREST(w, r, p, method)
		return
	}
	s.servePortalPage(w, r, p, tail)
}

// allowCORS lets app pages on another origin call the REST API from the browser, as
// the frame SDKs do; it answers a preflight itself and reports whether it did.
func allowCORS(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, X-Request-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// restMethod is the lower-case method name of a REST path, without ".json".
func restMethod(tail string) string {
	m := strings.TrimPrefix(tail, "rest/")
	m = strings.TrimSuffix(strings.ToLower(m), ".json")
	return m
}

// serveREST answers one REST request in the order a portal checks it: portal state,
// request rate, token, method, scope, operating budget; then runs the method.
func (s *Server) serveREST(w http.ResponseWriter, r *http.Request, p *Portal, path string) {
	started := time.Now()
	method := restMethod(path)
	p.requests.Add(1)
	req := Request{MemberID: p.memberID, Method: method, At: started}

	out, rerr, opStat := s.restCall(r, p, method, &req)
	status := http.StatusOK
	var body map[string]any
	if rerr != nil {
		status, body = errorBody(rerr)
		if rerr.code == "OPERATION_TIME_LIMIT" {
			body["time"] = timeObject(started, opStat)
		}
		req.Error = rerr.code
		if rerr.status == 0 {
			status = http.StatusBadGateway
		}
	} else {
		body = map[string]any{"result": out.result, "time": timeObject(started, opStat)}
		if out.total != nil {
			body["total"] = *out.total
		}
		if out.next != nil {
			body["next"] = *out.next
		}
	}
	req.Status = status
	s.reqs.add(req)
	w.Header().Set("X-Bitrix-Rest-Application", s.opts.ClientID)
	if rerr != nil && rerr.status == 0 {
		// An infrastructure failure in front of the portal: HTML, not JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return
	}
	writeJSONResponse(w, status, body)
}

func (s *Server) restCall(r *http.Request, p *Portal, method string, req *Request) (
	outcome, *restError, *opStat) {
	if err := s.faults.before(r.Context()); err != nil {
		discard(r.Body)
		return outcome{}, err, nil
	}
	switch {
	case p.isDeleted():
		return outcome{}, errPortalDeleted, nil
	case p.overload.Load():
		return outcome{}, errOverload, nil
	case !p.bucket.take(time.Now()):
		return outcome{}, errQueryLimit, nil
	}
	in, perr := readParams(r)
	if perr != nil {
		return outcome{}, perr, nil
	}
	g, aerr := s.checkAccess(p, accessToken(r, in))
	if aerr != nil {
		return outcome{}, aerr, nil
	}
	c := &call{s: s, p: p, g: g, method: method, in: in}
	var out outcome
	var rerr *restError
	var st *opStat
	if method == "batch" {
		out, rerr = s.batch(c, req)
	} else {
		out, rerr, st = s.invoke(c)
	}
	if rerr == nil {
		// The call took effect, but the caller is told it failed.
		if ferr := s.faults.after(); ferr != nil {
			return outcome{}, ferr, nil
		}
	}
	return out, rerr, st
}

// invoke runs one method for an authenticated call; batch commands come here too.
func (s *Server) invoke(c *call) (outcome, *restError, *opStat) {
	p := c.p
	switch {
	case p.paymentRequired.Load():
		return outcome{}, errPayment, nil
	case p.accessDenied.Load():
		return outcome{}, errAccessDenied, nil
	}
	spec, ok := methods[c.method]
	if !ok {
		return outcome{}, errMethodNotFound, nil
	}
	if !scopeAllows(p.appScope(), spec.scope) {
		return outcome{}, errScope, nil
	}
	now := time.Now()
	if st, blocked := p.operatingBlocked(c.method, now); blocked {
		return outcome{}, newError(429, "OPERATION_TIME_LIMIT",
			"Method is blocked due to operation time limit."), &st
	}
	if err, reset := s.faults.operationLimit(now); err != nil {
		return outcome{}, err, &opStat{resetAt: reset}
	}
	out, err := spec.fn(c)
	st := p.addOperating(c.method, time.Since(now), time.Now())
	return out, err, &st
}

// readParams merges the query string and the body (form or JSON) of a REST request.
func readParams(r *http.Request) (*obj, *restError) {
	in := newObj()
	if err := parseForm(r.URL.RawQuery, in); err != nil {
		return nil, newError(400, "INVALID_REQUEST", "Malformed query string")
	}
	if r.Body == nil || r.Method == http.MethodGet {
		return in, nil
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		body, err := parseJSON(http.MaxBytesReader(nil, r.Body, 10<<20))
		if err != nil {
			return nil, newError(400, "INVALID_REQUEST", "Malformed JSON body")
		}
		for _, k := range body.keys {
			in.set(k, body.m[k])
		}
	case strings.HasPrefix(ct, "multipart/form-data"):
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			return nil, newError(400, "INVALID_REQUEST", "Malformed form body")
		}
		for k, vs := range r.MultipartForm.Value {
			for _, v := range vs {
				setBracketed(in, k, v)
			}
		}
	default:
		raw, err := readAll(r)
		if err != nil {
			return nil, newError(400, "INVALID_REQUEST", "Unreadable body")
		}
		if err := parseForm(raw, in); err != nil {
			return nil, newError(400, "INVALID_REQUEST", "Malformed form body")
		}
	}
	return in, nil
}

func readAll(r *http.Request) (string, error) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 10<<20))
	return string(data), err
}

// accessToken finds the token the way the portal does: the Authorization header wins,
// then "auth", then "access_token".
func accessToken(r *http.Request, in *obj) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	for _, k := range []string{"auth", "access_token"} {
		if v, ok := in.m[k]; ok {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return ""
}

// timeObject is the "time" block of an answer.
func timeObject(start time.Time, st *opStat) map[string]any {
	finish := time.Now()
	t := map[string]any{
		"start":       float64(start.UnixMicro()) / 1e6,
		"finish":      float64(finish.UnixMicro()) / 1e6,
		"duration":    finish.Sub(start).Seconds(),
		"processing":  finish.Sub(start).Seconds(),
		"date_start":  start.Format(time.RFC3339),
		"date_finish": finish.Format(time.RFC3339),
	}
	if st != nil {
		t["operating"] = st.operating
		// Whole seconds, rounded up: the method is never callable before the time said.
		t["operating_reset_at"] = st.resetAt.Add(time.Second - 1).Unix()
	}
	return t
}
