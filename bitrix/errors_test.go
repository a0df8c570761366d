package bitrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"
)

func TestDecodeResponseClasses(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      error // class, nil for none
		temporary bool
	}{
		{"expired token", 401,
			`{"error":"expired_token","error_description":"The access token provided has expired"}`,
			ErrExpiredToken, true},
		{"invalid token", 401,
			`{"error":"invalid_token","error_description":"Unable to get application by token"}`,
			ErrInvalidToken, false},
		{"no auth", 401, `{"error":"NO_AUTH_FOUND","error_description":"Wrong authorization data"}`,
			ErrNoAuth, false},
		{"query limit", 503,
			`{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}`,
			ErrQueryLimit, true},
		{"operation limit", 429,
			`{"error":"OPERATION_TIME_LIMIT","error_description":"Method is blocked"}`,
			ErrOperationLimit, true},
		{"overload is 503 but permanent", 503,
			`{"error":"OVERLOAD_LIMIT","error_description":"blocked"}`,
			ErrOverload, false},
		{"access denied", 403, `{"error":"ACCESS_DENIED","error_description":"Access denied!"}`,
			ErrAccessDenied, false},
		{"wrong auth type", 403,
			`{"error":"WRONG_AUTH_TYPE","error_description":"x"}`, ErrAccessDenied, false},
		{"legacy access denied", 400, `{"error":"","error_description":"Access denied."}`,
			ErrAccessDenied, false},
		{"scope as 401", 401, `{"error":"insufficient_scope","error_description":""}`,
			ErrInsufficientScope, false},
		{"scope as 403", 403, `{"error":"insufficient_scope"}`, ErrInsufficientScope, false},
		{"method not found", 404,
			`{"error":"ERROR_METHOD_NOT_FOUND","error_description":"Method not found!"}`,
			ErrMethodNotFound, false},
		{"not found", 400,
			`{"error":"ERROR_NOT_FOUND","error_description":"Not found"}`, ErrNotFound, false},
		{"legacy not found", 400,
			`{"error":"","error_description":"Not found"}`, ErrNotFound, false},
		{"legacy user not found", 400,
			`{"error":"","error_description":"User not found"}`, ErrNotFound, false},
		{"legacy other", 400,
			`{"error":"","error_description":"ID is not defined or invalid."}`, nil, false},
		{"payment", 401, `{"error":"PAYMENT_REQUIRED","error_description":"Payment required"}`,
			ErrPaymentRequired, false},
		{"portal deleted as 500", 500,
			`{"error":"PORTAL_DELETED","error_description":"Portal was deleted"}`,
			ErrPortalDeleted, false},
		{"portal deleted as 410", 410, `{"error":"PORTAL_DELETED"}`, ErrPortalDeleted, false},
		{"internal error", 500, `{"error":"INTERNAL_SERVER_ERROR"}`, ErrServer, true},
		{"5xx html page", 502, `<html>Bad gateway</html>`, ErrServer, true},
		{"unknown code on 500", 500, `{"error":"SOMETHING_NEW"}`, ErrServer, true},
		{"unknown code on 400", 400,
			`{"error":"ERROR_ARGUMENT","argument":"PLACEMENT"}`, nil, false},
		{"error inside a 200", 200,
			`{"error":"ERROR_CORE","error_description":"Handler already binded"}`,
			nil, false},
		{"4xx without body", 404, ``, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := decodeResponse(tt.status, []byte(tt.body))
			if err == nil {
				t.Fatalf("decodeResponse() = %+v, want an error", resp)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("decodeResponse() error = %T %v, want *Error", err, err)
			}
			if e.Class() != tt.want {
				t.Errorf("Class() = %v, want %v", e.Class(), tt.want)
			}
			if tt.want != nil && !errors.Is(fmt.Errorf("wrapped: %w", err), tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			for _, other := range classes {
				if other.err != tt.want && errors.Is(err, other.err) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, other.err)
				}
			}
			if got := Temporary(err); got != tt.temporary {
				t.Errorf("Temporary(%v) = %v, want %v", err, got, tt.temporary)
			}
			if e.Status != tt.status {
				t.Errorf("Status = %d, want %d", e.Status, tt.status)
			}
		})
	}
}

func TestDecodeResponseSuccess(t *testing.T) {
	body := `{"result":[{"ID":"1"}],"total":"120","next":50,
		"time":{"start":1.5,"operating":3.3,"operating_reset_at":1778747792}}`
	resp, err := decodeResponse(200, []byte(body))
	if err != nil {
		t.Fatalf("decodeResponse() error = %v", err)
	}
	if resp.Total != 120 || resp.Next == nil || *resp.Next != 50 {
		t.Errorf("Total, Next = %d, %v; want 120, 50", resp.Total, resp.Next)
	}
	if string(resp.Result) != `[{"ID":"1"}]` {
		t.Errorf("Result = %s", resp.Result)
	}
	if resp.Time.OperatingResetAt != 1778747792 {
		t.Errorf("OperatingResetAt = %v, want 1778747792", resp.Time.OperatingResetAt)
	}

	last, err := decodeResponse(200, []byte(`{"result":[],"total":0}`))
	if err != nil || last.Next != nil {
		t.Errorf("decodeResponse(last page) = %+v, %v; want no next", last, err)
	}
}

func TestDecodeResponseResetAt(t *testing.T) {
	body := `{"error":"OPERATION_TIME_LIMIT","error_description":"blocked",
		"time":{"operating":481,"operating_reset_at":1778747792}}`
	_, err := decodeResponse(429, []byte(body))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("decodeResponse() error = %v, want *Error", err)
	}
	if want := time.Unix(1778747792, 0); !e.ResetAt.Equal(want) {
		t.Errorf("ResetAt = %v, want %v", e.ResetAt, want)
	}

	_, err = decodeResponse(429, []byte(`{"error":"OPERATION_TIME_LIMIT"}`))
	errors.As(err, &e)
	if d := time.Until(e.ResetAt); d < 50*time.Second || d > 61*time.Second {
		t.Errorf("ResetAt without operating_reset_at is %v away, want about a minute", d)
	}
}

func TestDecodeResponseGarbageIn200(t *testing.T) {
	_, err := decodeResponse(200, []byte(`{"result": [1, 2`))
	if err == nil || !Temporary(err) {
		t.Errorf("decodeResponse(truncated) error = %v, want a temporary transport error", err)
	}
	var e *Error
	if errors.As(err, &e) {
		t.Errorf("decodeResponse(truncated) = *Error %v, want a transport error", e)
	}
}

func TestTemporaryOfOtherErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"url error", &url.Error{Op: "Post", URL: "http://x", Err: io.EOF}, true},
		{"url error canceled", &url.Error{Op: "Post", URL: "http://x", Err: context.Canceled}, false},
		{"net error", &net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{"plain", errors.New("boom"), false},
		{"bad batch", ErrBadBatch, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Temporary(tt.err); got != tt.want {
				t.Errorf("Temporary(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Code: "QUERY_LIMIT_EXCEEDED", Description: "Too many requests", Status: 503}
	if got, want := e.Error(), "bitrix: QUERY_LIMIT_EXCEEDED: Too many requests (http 503)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMovedEndpoint(t *testing.T) {
	tests := []struct {
		name, endpoint, location, want string
		wantErr                        bool
	}{
		{name: "new domain with method", endpoint: "https://old.bitrix24.com/rest/",
			location: "https://new.bitrix24.com/rest/crm.lead.get", want: "https://new.bitrix24.com/rest/"},
		{name: "with json suffix and query", endpoint: "https://old.bitrix24.com/rest/",
			location: "https://new.bitrix24.com/rest/crm.lead.get.json?x=1", want: "https://new.bitrix24.com/rest/"},
		{name: "relative path", endpoint: "http://127.0.0.1:5/portal/a/rest/",
			location: "/portal/b/rest/crm.lead.get", want: "http://127.0.0.1:5/portal/b/rest/"},
		{name: "only the host", endpoint: "https://old.bitrix24.com/rest/",
			location: "https://new.bitrix24.com/", want: "https://new.bitrix24.com/rest/"},
		{name: "downgrade refused", endpoint: "https://old.bitrix24.com/rest/",
			location: "http://new.bitrix24.com/rest/crm.lead.get", wantErr: true},
		{name: "other scheme refused", endpoint: "https://old.bitrix24.com/rest/",
			location: "ftp://new.bitrix24.com/rest/crm.lead.get", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := movedEndpoint(tt.endpoint, "crm.lead.get", tt.location)
			if (err != nil) != tt.wantErr {
				t.Fatalf("movedEndpoint() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("movedEndpoint() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsRead(t *testing.T) {
	tests := []struct {
		method string
		want   bool
	}{
		{"crm.lead.get", true}, {"crm.lead.list", true}, {"user.get", true}, {"profile", true},
		{"timeman.status", true}, {"crm.lead.update", false}, {"crm.lead.add", false},
		{"event.offline.get", false}, {"batch", false}, {"im.notify.system.add", false},
	}
	for _, tt := range tests {
		if got := isRead(tt.method); got != tt.want {
			t.Errorf("isRead(%q) = %v, want %v", tt.method, got, tt.want)
		}
	}
}
