// Package handlers is LeadRouter's HTTP surface: the install page, the event
// receiver, the settings API, the intake webhook and the health endpoints.
//
// Every handler returns an error; Handle turns it into a response. An *Error carries
// the status and the message the caller may see; anything else is a 500 whose
// detail goes only to the log, next to the request ID that the response names.
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Error is an error whose Status and Message may be shown to the caller. Err, when
// set, is the cause; it is logged and never sent.
type Error struct {
	Status  int
	Code    string // a stable machine-readable code, e.g. "invalid_token"
	Message string // a sentence for people
	Fields  map[string]string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status, code and message.
func Errorf(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// HandlerFunc is a gin handler that reports failure by returning an error.
type HandlerFunc func(c *gin.Context) error

// Handle adapts h to gin. A returned *Error is answered with its status and message
// as JSON; any other error is logged with the request ID (and the portal's
// member_id when the handler called SetMember) and answered with a 500 that names
// the request ID and nothing else.
func Handle(log *slog.Logger, h HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		ctx := c.Request.Context()
		reqID, attrs := RequestID(ctx), requestAttrs(c)
		var he *Error
		if !errors.As(err, &he) {
			log.ErrorContext(ctx, "request failed", append(attrs, "error", err)...)
			he = &Error{Status: http.StatusInternalServerError, Code: "internal",
				Message: "Something went wrong on our side."}
		} else if he.Err != nil || he.Status >= 500 {
			log.WarnContext(ctx, "request refused", append(attrs, "status", he.Status,
				"code", he.Code, "error", err)...)
		}
		if c.Writer.Written() {
			return
		}
		body := gin.H{"error": he.Code, "message": he.Message, "request_id": reqID}
		if len(he.Fields) > 0 {
			body["fields"] = he.Fields
		}
		c.AbortWithStatusJSON(he.Status, body)
	}
}

type requestIDKey struct{}

// RequestIDHeader is the header that carries a request's ID in and out.
const RequestIDHeader = "X-Request-Id"

// WithRequestID is middleware that gives every request an ID: the caller's
// X-Request-Id when it is short and plain, a fresh random one otherwise. The ID is
// put on the response and into the request's context, where SetMember adds the
// portal once a handler knows it.
func WithRequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !plainID(id) {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Header(RequestIDHeader, id)
		ctx := context.WithValue(c.Request.Context(), requestIDKey{}, &requestInfo{id: id})
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// RequestID returns the request ID stored in ctx, or "" when there is none.
func RequestID(ctx context.Context) string {
	if info, _ := ctx.Value(requestIDKey{}).(*requestInfo); info != nil {
		return info.id
	}
	return ""
}

func plainID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
