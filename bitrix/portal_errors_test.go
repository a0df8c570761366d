package bitrix_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestErrorClassesThroughPortal drives every error class through the fake
// portal and checks the error the caller gets, whether it is worth retrying,
// and what the client did about it: the requests the portal saw.
func TestErrorClassesThroughPortal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		srvOpts   bitrixtest.Options
		limit     bitrix.Limit  // the client's limiter; zero: 100/s, 50; Rate -1: none
		retry     time.Duration // the client's RetryDelay; zero: 100 ms
		faults    *bitrixtest.Faults
		prepare   func(t *testing.T, b *bundle)
		method    string
		params    map[string]any
		want      error // nil: the call succeeds
		temporary bool
		// requests the portal served for the call, "method status error"
		wantRequests []string
		check        func(t *testing.T, b *bundle, err error)
	}{
		{
			name:    "expired token is refreshed once and the call retried",
			prepare: func(t *testing.T, b *bundle) { b.portal.ExpireAccessTokens() },
			method:  "profile",
			wantRequests: []string{
				"profile 401 expired_token",
				"profile 200 ",
			},
			check: func(t *testing.T, b *bundle, err error) {
				if n, _, _ := b.auth.state(); n != 1 {
					t.Errorf("refreshes = %d, want 1", n)
				}
			},
		},
		{
			name:         "invalid token",
			prepare:      func(t *testing.T, b *bundle) { b.auth.setToken("0123456789abcdef") },
			method:       "profile",
			want:         bitrix.ErrInvalidToken,
			wantRequests: []string{"profile 401 invalid_token"},
			check:        noRefresh,
		},
		{
			name:         "no auth",
			prepare:      func(t *testing.T, b *bundle) { b.auth.setToken("") },
			method:       "profile",
			want:         bitrix.ErrNoAuth,
			wantRequests: []string{"profile 401 NO_AUTH_FOUND"},
			check:        noRefresh,
		},
		{
			// Another app calling from the same address fills the bucket; the
			// limiter learns it from the portal's answer and paces the retry.
			name:    "query limit from the bucket: paced retry goes through",
			srvOpts: bitrixtest.Options{Rate: 2, Burst: 1},
			limit:   bitrix.Limit{Rate: 2, Burst: 1},
			prepare: fillBucket,
			method:  "profile",
			wantRequests: []string{
				"profile 200 ",
				"profile 503 QUERY_LIMIT_EXCEEDED",
				"profile 200 ",
			},
		},
		{
			name:    "query limit without a limiter: the client sleeps and retries",
			srvOpts: bitrixtest.Options{Rate: 2, Burst: 1},
			limit:   bitrix.Limit{Rate: -1},
			retry:   1200 * time.Millisecond, // the first retry waits 0.6-1.2 s
			prepare: fillBucket,
			method:  "profile",
			check:   requestCount(3, "profile"), // the neighbour's, the refused, the retry
		},
		{
			name:      "query limit until retries are spent",
			faults:    &bitrixtest.Faults{QueryLimit: 1},
			method:    "crm.lead.add",
			params:    map[string]any{"fields": map[string]any{"TITLE": "x"}},
			want:      bitrix.ErrQueryLimit,
			temporary: true,
			wantRequests: []string{
				"crm.lead.add 503 QUERY_LIMIT_EXCEEDED",
				"crm.lead.add 503 QUERY_LIMIT_EXCEEDED",
				"crm.lead.add 503 QUERY_LIMIT_EXCEEDED",
			},
		},
		{
			name: "operation time limit: not retried, reset time kept",
			prepare: func(t *testing.T, b *bundle) {
				b.portal.AddOperatingTime("crm.lead.list", 481*time.Second)
			},
			method:       "crm.lead.list",
			want:         bitrix.ErrOperationLimit,
			temporary:    true,
			wantRequests: []string{"crm.lead.list 429 OPERATION_TIME_LIMIT"},
			check: func(t *testing.T, b *bundle, err error) {
				var e *bitrix.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not a *bitrix.Error", err)
				}
				if until := time.Until(e.ResetAt); until <= 0 || until > 10*time.Minute {
					t.Errorf("ResetAt = %v, want within the next 10 minutes", e.ResetAt)
				}
				if e.Status != 429 {
					t.Errorf("Status = %d, want 429", e.Status)
				}
				// The limiter now fails the method fast; other methods go on.
				err = b.client.Call(t.Context(), "crm.lead.list", nil, nil)
				if !errors.Is(err, bitrix.ErrOperationLimit) {
					t.Errorf("second Call(crm.lead.list) error = %v, want ErrOperationLimit", err)
				}
				if err := b.client.Call(t.Context(), "profile", nil, nil); err != nil {
					t.Errorf("Call(profile) error = %v, want nil", err)
				}
				requestCount(1, "crm.lead.list")(t, b, nil)
			},
		},
		{
			name:         "overload is never retried",
			prepare:      func(t *testing.T, b *bundle) { b.portal.SetOverload(true) },
			method:       "crm.lead.list",
			want:         bitrix.ErrOverload,
			wantRequests: []string{"crm.lead.list 503 OVERLOAD_LIMIT"},
		},
		{
			name:         "access denied",
			prepare:      func(t *testing.T, b *bundle) { b.portal.SetAccessDenied(true) },
			method:       "crm.lead.list",
			want:         bitrix.ErrAccessDenied,
			wantRequests: []string{"crm.lead.list 403 ACCESS_DENIED"},
		},
		{
			name: "insufficient scope",
			prepare: func(t *testing.T, b *bundle) {
				b.portal.RegisterApp(bitrixtest.App{APIOnly: true, Scope: "user"})
			},
			method:       "crm.lead.list",
			want:         bitrix.ErrInsufficientScope,
			wantRequests: []string{"crm.lead.list 401 insufficient_scope"},
			check:        noRefresh,
		},
		{
			name:         "method not found",
			method:       "crm.lead.teleport",
			want:         bitrix.ErrMethodNotFound,
			wantRequests: []string{"crm.lead.teleport 404 ERROR_METHOD_NOT_FOUND"},
		},
		{
			name:         "not found with an empty code",
			method:       "crm.lead.get",
			params:       map[string]any{"id": 424242},
			want:         bitrix.ErrNotFound,
			wantRequests: []string{"crm.lead.get 400 "},
			check: func(t *testing.T, b *bundle, err error) {
				var e *bitrix.Error
				if !errors.As(err, &e) || e.Code != "" || e.Description != "Not found" {
					t.Errorf("error = %#v, want the legacy empty code with \"Not found\"", e)
				}
			},
		},
		{
			name:         "payment required",
			prepare:      func(t *testing.T, b *bundle) { b.portal.SetPaymentRequired(true) },
			method:       "profile",
			want:         bitrix.ErrPaymentRequired,
			wantRequests: []string{"profile 401 PAYMENT_REQUIRED"},
			check:        noRefresh,
		},
		{
			name:         "portal deleted",
			prepare:      func(t *testing.T, b *bundle) { b.portal.Delete() },
			method:       "profile",
			want:         bitrix.ErrPortalDeleted,
			wantRequests: []string{"profile 500 PORTAL_DELETED"},
		},
		{
			name:      "server error: a read is retried",
			faults:    &bitrixtest.Faults{Error5xx: 1},
			method:    "crm.lead.list",
			want:      bitrix.ErrServer,
			temporary: true,
			check:     requestCount(3, "crm.lead.list"),
		},
		{
			name:      "server error: a write is not retried",
			faults:    &bitrixtest.Faults{Error5xx: 1},
			method:    "crm.lead.add",
			params:    map[string]any{"fields": map[string]any{"TITLE": "x"}},
			want:      bitrix.ErrServer,
			temporary: true,
			check:     requestCount(1, "crm.lead.add"),
		},
	}
	rdb := redistest.New(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := bitrix.Options{MaxRetries: 2, RetryDelay: 100 * time.Millisecond}
			if tt.retry > 0 {
				opts.RetryDelay = tt.retry
			}
			switch {
			case tt.limit.Rate == 0:
				opts.Limiter = bitrix.NewRedisLimiter(rdb, 100, 50)
			case tt.limit.Rate > 0:
				opts.Limiter = bitrix.NewRedisLimiter(rdb, tt.limit.Rate, tt.limit.Burst)
			}
			b := setup(t, tt.srvOpts, opts)
			if tt.prepare != nil {
				tt.prepare(t, b)
			}
			if tt.faults != nil {
				b.srv.SetFaults(*tt.faults)
			}

			err := b.client.Call(t.Context(), tt.method, tt.params, nil)
			if tt.want == nil && err != nil {
				t.Fatalf("Call(%s) error = %v, want nil", tt.method, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Call(%s) error = %v, want %v", tt.method, err, tt.want)
			}
			if tt.want != nil && bitrix.Temporary(err) != tt.temporary {
				t.Errorf("Temporary(%v) = %v, want %v", err, !tt.temporary, tt.temporary)
			}
			if tt.wantRequests != nil {
				if diff := cmp.Diff(tt.wantRequests, b.requests()); diff != "" {
					t.Errorf("portal requests (-want +got):\n%s", diff)
				}
			}
			if tt.check != nil {
				tt.check(t, b, err)
			}
		})
	}
}

// fillBucket spends the portal's bucket as another app on the same address
// would: with its own client, outside the limiter.
func fillBucket(t *testing.T, b *bundle) {
	t.Helper()
	neighbour := bitrix.NewClient(b.portal.MemberID(), b.auth, bitrix.Options{MaxRetries: -1})
	if err := neighbour.Call(t.Context(), "profile", nil, nil); err != nil {
		t.Fatalf("fill the bucket: %v", err)
	}
}

func noRefresh(t *testing.T, b *bundle, _ error) {
	t.Helper()
	if n, _, _ := b.auth.state(); n != 0 {
		t.Errorf("refreshes = %d, want 0", n)
	}
}

func requestCount(n int, method string) func(t *testing.T, b *bundle, err error) {
	return func(t *testing.T, b *bundle, _ error) {
		t.Helper()
		got := 0
		for _, r := range b.srv.Requests() {
			if r.Method == method {
				got++
			}
		}
		if got != n {
			t.Errorf("portal served %d %s requests, want %d", got, method, n)
		}
	}
}
