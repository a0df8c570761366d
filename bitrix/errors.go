package bitrix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Error classes. An *Error matches one of them with errors.Is, decided by the
// error code the portal sent, never by the HTTP status alone.
var (
	// ErrExpiredToken: the access token has expired (expired_token); refresh it.
	ErrExpiredToken = errors.New("bitrix: access token expired")
	// ErrInvalidToken: the portal does not know the token (invalid_token).
	ErrInvalidToken = errors.New("bitrix: invalid access token")
	// ErrNoAuth: the request carried no authorization the portal recognised
	// (NO_AUTH_FOUND).
	ErrNoAuth = errors.New("bitrix: no authorization found")
	// ErrQueryLimit: the portal's leaky bucket is full (QUERY_LIMIT_EXCEEDED, 503).
	// The request was refused before it ran, so it is safe to send again.
	ErrQueryLimit = errors.New("bitrix: query limit exceeded")
	// ErrOperationLimit: the method has used up its time budget
	// (OPERATION_TIME_LIMIT, 429); Error.ResetAt says when to call it again.
	ErrOperationLimit = errors.New("bitrix: operation time limit")
	// ErrOverload: the portal's REST API is blocked by hand (OVERLOAD_LIMIT); never
	// retried automatically.
	ErrOverload = errors.New("bitrix: rest api blocked for overload")
	// ErrAccessDenied: the token's user may not do this (ACCESS_DENIED and its
	// relatives, or a legacy "Access denied." with an empty code).
	ErrAccessDenied = errors.New("bitrix: access denied")
	// ErrInsufficientScope: the application lacks a scope the method needs.
	ErrInsufficientScope = errors.New("bitrix: insufficient scope")
	// ErrMethodNotFound: the portal has no such method (ERROR_METHOD_NOT_FOUND).
	ErrMethodNotFound = errors.New("bitrix: method not found")
	// ErrNotFound: the requested entity does not exist, including the legacy
	// answer with an empty code and a "Not found" description.
	ErrNotFound = errors.New("bitrix: not found")
	// ErrPaymentRequired: the application's paid period is over.
	ErrPaymentRequired = errors.New("bitrix: payment required")
	// ErrPortalDeleted: the portal no longer exists.
	ErrPortalDeleted = errors.New("bitrix: portal deleted")
	// ErrServer: the portal failed on its side (INTERNAL_SERVER_ERROR, or a 5xx
	// answer without a known code). Worth retrying later.
	ErrServer = errors.New("bitrix: portal server error")
)

// Error is an error answer of the portal: the error code and description of the
// envelope, the HTTP status (zero for a command inside a batch), the method it
// answers, and for OPERATION_TIME_LIMIT the time the method becomes callable again.
type Error struct {
	Code        string
	Description string
	Status      int
	// Method is the lower-case method refused: the one called ("batch" for a batch
	// refused as a whole), or the command's method for a command inside a batch.
	// OPERATION_TIME_LIMIT blocks this method only; the portal's other methods go on.
	Method  string
	ResetAt time.Time
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("bitrix: ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString("error")
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (http %d)", e.Status)
	}
	return b.String()
}

// Is reports whether target is the error class of e.
func (e *Error) Is(target error) bool {
	return target != nil && e.Class() == target
}

// Class returns the sentinel of e's error class, or nil when the code is not
// one LeadRouter tells apart.
func (e *Error) Class() error {
	if c, ok := codeClasses[strings.ToUpper(e.Code)]; ok {
		return c
	}
	if e.Code == "" {
		if c := legacyClass(e.Description); c != nil {
			return c
		}
	}
	if e.Status >= 500 {
		return ErrServer
	}
	return nil
}

// codeClasses maps upper-cased error codes to their class.
var codeClasses = map[string]error{
	"EXPIRED_TOKEN":           ErrExpiredToken,
	"INVALID_TOKEN":           ErrInvalidToken,
	"NO_AUTH_FOUND":           ErrNoAuth,
	"QUERY_LIMIT_EXCEEDED":    ErrQueryLimit,
	"OPERATION_TIME_LIMIT":    ErrOperationLimit,
	"OVERLOAD_LIMIT":          ErrOverload,
	"ACCESS_DENIED":           ErrAccessDenied,
	"USER_ACCESS_ERROR":       ErrAccessDenied,
	"WRONG_AUTH_TYPE":         ErrAccessDenied,
	"ACCESSEXCEPTION":         ErrAccessDenied,
	"METHOD_CONFIRM_DENIED":   ErrAccessDenied,
	"INSUFFICIENT_SCOPE":      ErrInsufficientScope,
	"INVALID_SCOPE":           ErrInsufficientScope,
	"ERROR_METHOD_NOT_FOUND":  ErrMethodNotFound,
	"ERROR_NOT_FOUND":         ErrNotFound,
	"NOT_FOUND":               ErrNotFound,
	"PAYMENT_REQUIRED":        ErrPaymentRequired,
	"PORTAL_DELETED":          ErrPortalDeleted,
	"INTERNAL_SERVER_ERROR":   ErrServer,
	"ERROR_UNEXPECTED_ANSWER": ErrServer,
}

// legacyClass classifies the answers of legacy CRM methods, which come with an
// empty error code and only a description ("Not found", "Access denied.").
func legacyClass(description string) error {
	d := strings.ToLower(strings.TrimSpace(description))
	switch {
	case strings.HasSuffix(strings.TrimSuffix(d, "."), "not found"):
		return ErrNotFound
	case strings.HasPrefix(d, "access denied"):
		return ErrAccessDenied
	}
	return nil
}

// classes lists every class with the label it carries in metrics and logs.
var classes = []struct {
	err   error
	label string
}{
	{ErrExpiredToken, "expired_token"},
	{ErrInvalidToken, "invalid_token"},
	{ErrNoAuth, "no_auth"},
	{ErrQueryLimit, "query_limit"},
	{ErrOperationLimit, "operation_limit"},
	{ErrOverload, "overload"},
	{ErrAccessDenied, "access_denied"},
	{ErrInsufficientScope, "insufficient_scope"},
	{ErrMethodNotFound, "method_not_found"},
	{ErrNotFound, "not_found"},
	{ErrPaymentRequired, "payment_required"},
	{ErrPortalDeleted, "portal_deleted"},
	{ErrServer, "server_error"},
}

// outcome names the result of a request for metrics and logs.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	for _, c := range classes {
		if errors.Is(err, c.err) {
			return c.label
		}
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		return "error"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "transport"
}

// Temporary reports whether err is worth retrying later: the portal's limits
// (ErrQueryLimit, and ErrOperationLimit after its ResetAt), an expired token,
// server errors, timeouts and network failures. It is false for ErrOverload,
// for every permanent answer and for a canceled context.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	for _, c := range []error{ErrQueryLimit, ErrOperationLimit, ErrServer, ErrExpiredToken} {
		if errors.Is(err, c) {
			return true
		}
	}
	var e *Error
	if errors.As(err, &e) {
		return false
	}
	var ue *url.Error
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ue) ||
		errors.As(err, &ne) || errors.Is(err, errTransport)
}

// errTransport marks failures on the way to or from the portal that are not
// answers of the portal: unreadable bodies, truncated JSON from a proxy.
var errTransport = errors.New("bitrix: transport failure")
