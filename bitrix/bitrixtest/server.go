package bitrixtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Options configure a Server. The zero value gives Bitrix24's standard plan: 2 requests
// a second with a bucket of 50, one-hour access tokens.
type Options struct {
	// ClientID and ClientSecret identify the one application the OAuth server knows.
	// Defaults: "local.0123456789abcd.12345678" and "secret".
	ClientID, ClientSecret string
	// Rate is how many requests a second a portal's leaky bucket drains (default 2);
	// Burst is the bucket's size (default 50). A negative Rate switches the bucket off.
	Rate  float64
	Burst int
	// AccessTTL is the lifetime of access tokens (default one hour).
	AccessTTL time.Duration
	// RevokeOnRefresh makes a refresh also kill the access token issued with the used
	// refresh token (the 2020 reading of the docs); it then answers expired_token.
	RevokeOnRefresh bool
	// OperatingLimit is the per-method execution-time budget over OperatingWindow
	// (defaults 480 s over 10 minutes).
	OperatingLimit, OperatingWindow time.Duration
	// DeliveryWorkers is how many event deliveries run at once (default 4);
	// DeliveryTimeout bounds one delivery (default 5 s).
	DeliveryWorkers int
	DeliveryTimeout time.Duration
	// DeliveryLogSize caps how many deliveries a portal's Deliveries keeps (default
	// 20,000); past it the older half is forgotten. WaitDeliveries counts them all.
	DeliveryLogSize int
	// RequestLogSize caps how many requests Requests keeps (default 200,000); past it
	// the older half is forgotten. RequestCount counts them all.
	RequestLogSize int
	// Logger receives the server's own diagnostics; nil discards them.
	Logger *slog.Logger
	// Addr is where the portals listen (default "127.0.0.1:0").
	Addr string
	// OAuthAddr is where the OAuth server listens (default: Addr's host, a free port).
	// It has an address of its own so that its domain differs from the portals'.
	OAuthAddr string
}

func (o Options) withDefaults() Options {
	if o.ClientID == "" {
		o.ClientID = "local.0123456789abcd.12345678"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "secret"
	}
	if o.Rate == 0 {
		o.Rate = 2
	}
	if o.Burst == 0 {
		o.Burst = 50
	}
	if o.AccessTTL == 0 {
		o.AccessTTL = time.Hour
	}
	if o.OperatingLimit == 0 {
		o.OperatingLimit = 480 * time.Second
	}
	if o.OperatingWindow == 0 {
		o.OperatingWindow = 10 * time.Minute
	}
	if o.DeliveryWorkers == 0 {
		o.DeliveryWorkers = 4
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 5 * time.Second
	}
	if o.DeliveryLogSize == 0 {
		o.DeliveryLogSize = 20_000
	}
	if o.RequestLogSize == 0 {
		o.RequestLogSize = 200_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.OAuthAddr == "" {
		host, _, err := net.SplitHostPort(o.Addr)
		if err != nil || host == "" {
			host = "127.0.0.1"
		}
		o.OAuthAddr = net.JoinHostPort(host, "0")
	}
	return o
}

// Server is a fake Bitrix24: one listener for any number of portals and one for the
// OAuth server. It is safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	srv      *http.Server // portals
	oauthSrv *http.Server // OAuth server
	url      string
	oauthURL string
	mux      *http.ServeMux

	mu      sync.RWMutex       // guards portals, byPath
	portals map[string]*Portal // by member_id
	byPath  map[string]*Portal // by path segment, current and former names

	tokens   tokenStore
	reqs     requestLog
	faults   faultState
	delivery *deliverer

	closeOnce sync.Once
}

// NewServer starts a server on opts.Addr and panics when it cannot listen, like
// httptest.NewServer. Use Listen for a server whose address may be taken.
func NewServer(opts Options) *Server {
	s, err := Listen(opts)
	if err != nil {
		panic(fmt.Sprintf("bitrixtest: %v", err))
	}
	return s
}

// Listen starts a server on opts.Addr.
func Listen(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", opts.Addr, err)
	}
	oauthLn, err := net.Listen("tcp", opts.OAuthAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", opts.OAuthAddr, err)
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		url:      "http://" + ln.Addr().String(),
		oauthURL: "http://" + oauthLn.Addr().String(),
		mux:      http.NewServeMux(),
		portals:  make(map[string]*Portal),
		byPath:   make(map[string]*Portal),
	}
	s.tokens.init()
	s.reqs.max = opts.RequestLogSize
	s.delivery = newDeliverer(s)
	s.routes()
	oauthMux := http.NewServeMux()
	oauthMux.HandleFunc("/oauth/token/", s.serveToken)
	oauthMux.HandleFunc("/oauth/token", s.serveToken)
	oauthMux.HandleFunc("/rest/", s.serveOAuthREST)
	s.srv = s.serve(ln, s.mux)
	s.oauthSrv = s.serve(oauthLn, oauthMux)
	return s, nil
}

func (s *Server) serve(ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake portal stopped serving", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return srv
}

// Start starts a server for one test and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Listen(opts)
	if err != nil {
		t.Fatalf("bitrixtest.Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *Server) routes() {
	s.mux.HandleFunc("/portal/", s.servePortal)
	s.mux.HandleFunc("/{$}", s.serveIndex)
	s.frameRoutes()
}

// Handle registers an extra handler on the server's mux (the emulated portal frame
// pages use it). Patterns follow net/http.ServeMux.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Handler returns the portals' HTTP surface (not the OAuth server's), for mounting it
// elsewhere.
func (s *Server) Handler() http.Handler { return s.mux }

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// OAuthURL is the base of the OAuth server, http://127.0.0.1:PORT2: the token endpoint
// is OAuthURL()+"/oauth/token/" and its REST endpoint (app.info) OAuthURL()+"/rest/".
func (s *Server) OAuthURL() string { return s.oauthURL }

// ClientID returns the application's client_id.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the application's client_secret.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// host is the portals' host:port, the DOMAIN of every portal.
func (s *Server) host() string { return strings.TrimPrefix(s.url, "http://") }

// oauthHost is the OAuth server's host:port, the "domain" of its token answers.
func (s *Server) oauthHost() string { return strings.TrimPrefix(s.oauthURL, "http://") }

// Close stops the listener and the event deliveries. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.delivery.stop()
		for _, srv := range []*http.Server{s.srv, s.oauthSrv} {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		}
	})
}

// Portal returns the portal with the given member_id, or nil.
func (s *Server) Portal(memberID string) *Portal {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.portals[memberID]
}

// Portals returns every portal, in no particular order.
func (s *Server) Portals() []*Portal {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Portal, 0, len(s.portals))
	for _, p := range s.portals {
		out = append(out, p)
	}
	return out
}

// portalByPath finds the portal a path segment names; moved is set when the segment
// is a former name of the portal.
func (s *Server) portalByPath(seg string) (p *Portal, moved bool) {
	s.mu.RLock()
	p = s.byPath[seg]
	s.mu.RUnlock()
	if p == nil {
		return nil, false
	}
	return p, p.path() != seg
}

// Request is one HTTP request the server answered.
type Request struct {
	MemberID string
	// Method is the lower-case REST method, or "oauth.token" for the token endpoint.
	Method string
	// Batch lists the methods of a batch's commands.
	Batch  []string
	Status int
	// Error is the error code answered, empty on success.
	Error string
	At    time.Time
}

// requestLog keeps the served requests and a cheap counter of them.
type requestLog struct {
	count atomic.Int64
	max   int
	mu    sync.Mutex // guards list
	list  []Request
}

func (l *requestLog) add(r Request) {
	l.count.Add(1)
	l.mu.Lock()
	if len(l.list) >= l.max {
		l.list = append(l.list[:0], l.list[len(l.list)/2:]...)
	}
	l.list = append(l.list, r)
	l.mu.Unlock()
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.reqs.mu.Lock()
	defer s.reqs.mu.Unlock()
	return append([]Request(nil), s.reqs.list...)
}

// RequestCount is the number of requests served since the server started; it costs
// one atomic load.
func (s *Server) RequestCount() int64 { return s.reqs.count.Load() }

// randomHex returns n random bytes as hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
