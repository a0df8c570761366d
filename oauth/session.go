package oauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBadSession is wrapped by every error of Sessions.Verify: the token is
// malformed, forged, tampered with or expired.
var ErrBadSession = errors.New("invalid session token")

// Session is a verified page session: who opened LeadRouter on which portal.
type Session struct {
	MemberID string
	UserID   int64
	Admin    bool
	Lang     string
	Name     string
	Expires  time.Time
}

// sessionWire is the signed payload; short names keep the header small.
type sessionWire struct {
	MemberID string `json:"m"`
	UserID   int64  `json:"u"`
	Admin    bool   `json:"a,omitempty"`
	Lang     string `json:"l,omitempty"`
	Name     string `json:"n,omitempty"`
	Expires  int64  `json:"e"`
}

// sessionPrefix versions the token format and separates it from anything else
// signed with a key derived from the client secret.
const sessionPrefix = "lr1."

// Sessions issues and verifies short-lived session tokens for page scripts. A
// token is "lr1.<payload>.<mac>": base64url JSON and base64url HMAC-SHA256 under a
// key derived from the client secret, so every instance of one deployment accepts
// every other's tokens. Safe for concurrent use.
type Sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSessions returns Sessions keyed from clientSecret whose tokens live ttl.
func NewSessions(clientSecret string, ttl time.Duration) *Sessions {
	return newSessions(clientSecret, ttl, time.Now)
}

func newSessions(clientSecret string, ttl time.Duration, now func() time.Time) *Sessions {
	mac := hmac.New(sha256.New, []byte(clientSecret))
	mac.Write([]byte("leadrouter page session key v1"))
	return &Sessions{key: mac.Sum(nil), ttl: ttl, now: now}
}

// TTL returns how long an issued token lives.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// Issue returns a token for the verified user u.
func (s *Sessions) Issue(u FrameUser) string {
	payload, _ := json.Marshal(sessionWire{
		MemberID: u.MemberID,
		UserID:   u.UserID,
		Admin:    u.Admin,
		Lang:     u.Lang,
		Name:     u.Name,
		Expires:  s.now().Add(s.ttl).Unix(),
	})
	body := sessionPrefix + base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.sign(body))
}

func (s *Sessions) sign(body string) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(body))
	return mac.Sum(nil)
}

// Verify checks a token's signature and expiry and returns its session.
func (s *Sessions) Verify(token string) (*Session, error) {
	if !strings.HasPrefix(token, sessionPrefix) || len(token) > 4096 {
		return nil, fmt.Errorf("%w: unknown format", ErrBadSession)
	}
	dot := strings.LastIndexByte(token, '.')
	body, sig := token[:dot], token[dot+1:]
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.sign(body)) {
		return nil, fmt.Errorf("%w: bad signature", ErrBadSession)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(body, sessionPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: bad payload", ErrBadSession)
	}
	var w sessionWire
	err = json.Unmarshal(payload, &w)
	if err != nil || CheckMemberID(w.MemberID) != nil || w.UserID <= 0 {
		return nil, fmt.Errorf("%w: bad payload", ErrBadSession)
	}
	exp := time.Unix(w.Expires, 0)
	if !s.now().Before(exp) {
		return nil, fmt.Errorf("%w: expired", ErrBadSession)
	}
	return &Session{MemberID: w.MemberID, UserID: w.UserID, Admin: w.Admin, Lang: w.Lang,
		Name: w.Name, Expires: exp}, nil
}
