package bitrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Credentials are what a request needs to reach a portal.
type Credentials struct {
	// Endpoint is the portal's client_endpoint, "https://x.bitrix24.com/rest/".
	Endpoint string
	// AccessToken is the OAuth access token sent with every request.
	AccessToken string
}

// Auth supplies and renews a portal's credentials; package oauth implements it.
type Auth interface {
	// Credentials returns the credentials to use now.
	Credentials(ctx context.Context) (Credentials, error)
	// Refresh is called once after the portal answered expired_token to a
	// request made with stale; it returns fresh credentials (refreshing, or
	// picking up what another instance refreshed).
	Refresh(ctx context.Context, stale Credentials) (Credentials, error)
	// Moved records that the portal answers at a new client endpoint after a
	// domain change (302).
	Moved(ctx context.Context, endpoint string) error
}

// Options configure a Client. The zero value works: http.DefaultClient's
// transport, no rate limiting, a discarding logger, DefaultTimeout and
// DefaultMaxRetries.
type Options struct {
	// HTTPClient sends the requests. Its CheckRedirect is replaced: the Client
	// handles a portal's redirect itself.
	HTTPClient *http.Client
	// Limiter paces requests to the portal; nil sends without waiting.
	Limiter Limiter
	// Logger receives one debug line per request and warnings about limits and
	// moves; it never sees a token.
	Logger *slog.Logger
	// Timeout bounds each HTTP request (not the wait for the limiter).
	Timeout time.Duration
	// MaxRetries is how often a request refused with QUERY_LIMIT_EXCEEDED (or a
	// read that failed on the way) is sent again; negative means never.
	MaxRetries int
	// RetryDelay is the first delay before a retry that the Limiter does not
	// pace (a read after a server error, or any retry without a Limiter); it
	// doubles with each attempt, with jitter. Default DefaultRetryDelay.
	RetryDelay time.Duration
}

// Defaults of Options.
const (
	// DefaultTimeout is a little longer than the 60 s a cloud portal lets a
	// request run, so that the portal's own answer arrives.
	DefaultTimeout    = 65 * time.Second
	DefaultMaxRetries = 3
	DefaultRetryDelay = 500 * time.Millisecond
	// maxRedirects bounds the chain of portal moves followed in one request.
	maxRedirects = 3
	// maxBody bounds an answer read into memory.
	maxBody = 64 << 20
)

// Client calls the REST methods of one portal. It is safe for concurrent use and
// cheap to create; every request takes its credentials from Auth.
type Client struct {
	memberID   string
	auth       Auth
	http       *http.Client
	limiter    Limiter
	log        *slog.Logger
	timeout    time.Duration
	maxRetries int
	retryDelay time.Duration

	mu    sync.Mutex        // guards moved
	moved map[string]string // client endpoint → where the portal moved it
}

// NewClient returns a client of the portal memberID.
func NewClient(memberID string, auth Auth, opts Options) *Client {
	hc := http.Client{}
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{
		memberID:   memberID,
		auth:       auth,
		http:       &hc,
		limiter:    opts.Limiter,
		log:        opts.Logger,
		timeout:    opts.Timeout,
		maxRetries: opts.MaxRetries,
		retryDelay: opts.RetryDelay,
	}
	if c.retryDelay <= 0 {
		c.retryDelay = DefaultRetryDelay
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	return c
}

// MemberID returns the portal the client calls.
func (c *Client) MemberID() string { return c.memberID }

// Response is a portal's successful answer.
type Response struct {
	// Result is the method's result as the portal sent it.
	Result json.RawMessage
	// Total is the number of rows a list method counted (0 when it did not).
	Total int
	// Next is the start of the next page of a list, nil on the last page.
	Next *int
	// Time is the portal's timing of the request.
	Time Timing
}

// Timing is the time block of an answer; OperatingResetAt and Operating are
// the method's time budget (cloud portals only).
type Timing struct {
	Start            float64 `json:"start"`
	Finish           float64 `json:"finish"`
	Duration         float64 `json:"duration"`
	Processing       float64 `json:"processing"`
	Operating        float64 `json:"operating"`
	OperatingResetAt float64 `json:"operating_reset_at"`
}

// Call calls method with params (anything that encodes as a JSON object; nil
// for none) and decodes the result into result unless result is nil.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	resp, err := c.CallRaw(ctx, method, params)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("decode result of %s on portal %s: %w", method, c.memberID, err)
	}
	return nil
}

// CallRaw calls method with params and returns the answer undecoded.
func (c *Client) CallRaw(ctx context.Context, method string, params any) (*Response, error) {
	body, err := encodeBody(params)
	if err != nil {
		return nil, fmt.Errorf("encode params of %s: %w", method, err)
	}
	return c.do(ctx, strings.ToLower(method), body, isRead(method))
}

func encodeBody(params any) ([]byte, error) {
	if params == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(params)
}

// do sends one call, reacting to what the portal answers: a refresh and one
// retry after expired_token, paced retries after QUERY_LIMIT_EXCEEDED, retries
// of reads that failed on the way, and a method block after
// OPERATION_TIME_LIMIT.
func (c *Client) do(ctx context.Context, method string, body []byte, read bool) (*Response, error) {
	creds, err := c.auth.Credentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("credentials of portal %s: %w", c.memberID, err)
	}
	refreshed := false
	for attempt := 0; ; attempt++ {
		if err := c.wait(ctx, method); err != nil {
			return nil, fmt.Errorf("call %s on portal %s: %w", method, c.memberID, err)
		}

		resp, err := c.send(ctx, &creds, method, body)
		if err == nil {
			return resp, nil
		}
		var e *Error
		if errors.As(err, &e) {
			e.Method = method
		}

		retry := attempt < c.maxRetries
		switch {
		case errors.Is(err, ErrExpiredToken) && !refreshed:
			refreshed = true
			creds, err = c.auth.Refresh(ctx, creds)
			if err != nil {
				return nil, fmt.Errorf("refresh token of portal %s: %w", c.memberID, err)
			}
			attempt--
			continue
		case errors.Is(err, ErrQueryLimit) && retry:
			c.backoff(ctx, attempt)
			continue
		case errors.Is(err, ErrOperationLimit):
			c.blockMethod(ctx, method, err)
		case read && retry && failedOnTheWay(err) && ctx.Err() == nil:
			if sleep(ctx, c.delay(attempt)) == nil {
				continue
			}
		}
		return nil, fmt.Errorf("call %s on portal %s: %w", method, c.memberID, err)
	}
}

func (c *Client) wait(ctx context.Context, method string) error {
	switch l := c.limiter.(type) {
	case nil:
		return nil
	case MethodLimiter:
		return l.WaitMethod(ctx, c.memberID, method)
	default:
		return l.Wait(ctx, c.memberID)
	}
}

// backoff reacts to QUERY_LIMIT_EXCEEDED: the shared limiter learns that the
// bucket is full and paces the retry; without a limiter the client sleeps.
func (c *Client) backoff(ctx context.Context, attempt int) {
	if c.limiter != nil {
		c.limiter.Backoff(ctx, c.memberID, time.Time{})
		return
	}
	sleep(ctx, c.delay(attempt))
}

func (c *Client) blockMethod(ctx context.Context, method string, err error) {
	var e *Error
	if !errors.As(err, &e) {
		return
	}
	if l, ok := c.limiter.(MethodLimiter); ok {
		l.BlockMethod(ctx, c.memberID, method, e.ResetAt)
	}
}

// delay is an exponential delay with jitter: between half and all of
// RetryDelay, twice that, four times that, ...
func (c *Client) delay(attempt int) time.Duration {
	d := c.retryDelay << min(attempt, 6)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send posts the call, following the portal to its new address when it
// answers with a redirect: the POST is sent again there and Auth learns the
// new endpoint.
func (c *Client) send(ctx context.Context, creds *Credentials, method string,
	body []byte) (*Response, error) {
	creds.Endpoint = c.endpoint(creds.Endpoint)
	for hop := 0; ; hop++ {
		resp, location, err := c.post(ctx, *creds, method, body)
		if location == "" || err != nil {
			return resp, err
		}
		if hop == maxRedirects {
			return nil, fmt.Errorf("portal moved more than %d times: %w", maxRedirects, errTransport)
		}
		moved, err := movedEndpoint(creds.Endpoint, method, location)
		if err != nil {
			return nil, err
		}
		c.log.Warn("portal moved", "member_id", c.memberID, "method", method,
			"from", creds.Endpoint, "to", moved)
		c.setMoved(creds.Endpoint, moved)
		if err := c.auth.Moved(ctx, moved); err != nil {
			c.log.Error("record portal move", "member_id", c.memberID, "to", moved, "error", err)
		}
		creds.Endpoint = moved
	}
}

// endpoint returns where the portal at endpoint answers now, as far as this
// client has seen it move.
func (c *Client) endpoint(endpoint string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range maxRedirects {
		next, ok := c.moved[endpoint]
		if !ok {
			break
		}
		endpoint = next
	}
	return endpoint
}

func (c *Client) setMoved(from, to string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moved == nil {
		c.moved = make(map[string]string)
	}
	c.moved[from] = to
}

// post sends one HTTP request. A redirect comes back as its Location, resolved
// against the request's URL.
func (c *Client) post(ctx context.Context, creds Credentials, method string,
	body []byte) (*Response, string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	u := strings.TrimSuffix(creds.Endpoint, "/") + "/" + method
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+creds.AccessToken)

	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		c.record(method, start, 0, err)
		return nil, "", err
	}
	defer res.Body.Close()

	if isRedirect(res.StatusCode) {
		io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
		c.recordOutcome(method, start, res.StatusCode, "moved")
		loc, err := res.Location()
		if err != nil {
			return nil, "", fmt.Errorf("redirect %d without a usable Location: %w",
				res.StatusCode, errTransport)
		}
		return nil, loc.String(), nil
	}

	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err == nil && len(data) > maxBody {
		err = fmt.Errorf("answer longer than %d bytes: %w", maxBody, errTransport)
	}
	if err != nil {
		c.record(method, start, res.StatusCode, err)
		return nil, "", fmt.Errorf("read answer: %w", err)
	}
	resp, err := decodeResponse(res.StatusCode, data)
	c.record(method, start, res.StatusCode, err)
	return resp, "", err
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func (c *Client) record(method string, start time.Time, status int, err error) {
	c.recordOutcome(method, start, status, outcome(err))
}

func (c *Client) recordOutcome(method string, start time.Time, status int, out string) {
	elapsed := time.Since(start)
	member := c.memberID
	if out == "ok" {
		member = "" // successes by method only: one series per portal is too many
	}
	restRequests.WithLabelValues(member, method, out).Inc()
	restLatency.WithLabelValues(method).Observe(elapsed.Seconds())
	level := slog.LevelDebug
	switch out {
	case "query_limit", "operation_limit", "overload", "server_error", "transport", "timeout":
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "rest request", "member_id", c.memberID,
		"method", method, "status", status, "outcome", out,
		"duration_ms", elapsed.Milliseconds())
}

// envelope is the JSON answer of a portal, success or error.
type envelope struct {
	Result      json.RawMessage `json:"result"`
	Total       ID              `json:"total"`
	Next        *ID             `json:"next"`
	Time        Timing          `json:"time"`
	Error       *string         `json:"error"`
	Description string          `json:"error_description"`
}

// noCode describes an error answer that carried no error code.
const noCode = "answer without an error code"

// decodeResponse turns an HTTP answer into a Response or an *Error. Whether it
// is an error is decided by the error key of the body; the status only
// decides for bodies without one.
func decodeResponse(status int, data []byte) (*Response, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		if status >= 400 {
			return nil, &Error{Status: status, Description: noCode}
		}
		return nil, fmt.Errorf("decode answer (http %d): %w: %w", status, errTransport, err)
	}
	if env.Error != nil {
		e := &Error{Code: *env.Error, Description: env.Description, Status: status}
		if e.Is(ErrOperationLimit) {
			e.ResetAt = resetAt(env.Time)
		}
		return nil, e
	}
	if status >= 400 {
		return nil, &Error{Status: status, Description: noCode}
	}
	resp := &Response{Result: env.Result, Total: int(env.Total), Time: env.Time}
	if env.Next != nil {
		n := int(*env.Next)
		resp.Next = &n
	}
	return resp, nil
}

// resetAt is when a method blocked by OPERATION_TIME_LIMIT may be called
// again: the portal's operating_reset_at, or when it does not say, one minute
// from now (the portal counts a method's time in one-minute buckets).
func resetAt(t Timing) time.Time {
	if t.OperatingResetAt > 0 {
		return time.Unix(int64(t.OperatingResetAt), 0)
	}
	return time.Now().Add(time.Minute)
}

// failedOnTheWay reports whether err is a server error or a transport failure:
// the request may or may not have run.
func failedOnTheWay(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return errors.Is(err, ErrServer)
	}
	return Temporary(err)
}

// movedEndpoint is the client endpoint a portal moved to, read from the
// Location of its redirect (which names the method at the new address). A move
// from https to http is refused.
func movedEndpoint(endpoint, method, location string) (string, error) {
	old, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("parse endpoint: %w", err)
	}
	loc, err := old.Parse(location)
	if err != nil || loc.Host == "" {
		return "", fmt.Errorf("portal moved to an unusable address: %w", errTransport)
	}
	if loc.Scheme != "https" && (loc.Scheme != "http" || old.Scheme != "http") {
		return "", fmt.Errorf("portal moved from %s to %s, refused: %w",
			old.Scheme, loc.Scheme, errTransport)
	}
	path := old.Path
	lower := strings.ToLower(loc.Path)
	for _, suffix := range []string{method + ".json", method} {
		if strings.HasSuffix(lower, suffix) {
			path = loc.Path[:len(loc.Path)-len(suffix)]
			break
		}
	}
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	return (&url.URL{Scheme: loc.Scheme, Host: loc.Host, Path: path}).String(), nil
}

// isRead reports whether method only reads, so that sending it twice is
// harmless.
func isRead(method string) bool {
	m := strings.ToLower(method)
	switch m {
	case "profile", "user.current", "user.admin", "app.info", "methods", "scope":
		return true
	}
	i := strings.LastIndexByte(m, '.')
	switch m[i+1:] {
	case "get", "list", "fields", "status":
		return !strings.HasPrefix(m, "event.offline.")
	}
	return false
}
