package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/leadrouter/leadrouter/bitrix"
)

// AppInfo is what the OAuth server's app.info says about an access token: which
// application it was issued to and on which portal the application is installed.
type AppInfo struct {
	ClientID string
	Scope    string
	UserID   int64
	Install  AppInstall
}

// AppInstall is the install part of the OAuth server's app.info.
type AppInstall struct {
	Installed      bool
	Version        string
	Status         string // the app status letter
	Scope          string
	Domain         string
	ClientEndpoint string
	MemberID       string
}

type appInfoWire struct {
	ClientID string          `json:"client_id"`
	Scope    string          `json:"scope"`
	UserID   bitrix.ID       `json:"user_id"`
	Install  *appInstallWire `json:"install"`
}

type appInstallWire struct {
	Installed      bool            `json:"installed"`
	Version        json.RawMessage `json:"version"`
	Status         string          `json:"status"`
	Scope          string          `json:"scope"`
	Domain         string          `json:"domain"`
	ClientEndpoint string          `json:"client_endpoint"`
	MemberID       string          `json:"member_id"`
}

// staticAuth is a bitrix.Auth for a token LeadRouter must not refresh: a page's
// AUTH_ID or an event's access token.
type staticAuth struct {
	creds bitrix.Credentials
	moved func(ctx context.Context, endpoint string) error
}

func (a staticAuth) Credentials(context.Context) (bitrix.Credentials, error) { return a.creds, nil }

func (a staticAuth) Refresh(context.Context, bitrix.Credentials) (bitrix.Credentials, error) {
	return bitrix.Credentials{}, fmt.Errorf("the caller's access token has expired: %w", ErrForbidden)
}

func (a staticAuth) Moved(ctx context.Context, endpoint string) error {
	if a.moved == nil {
		return nil
	}
	return a.moved(ctx, endpoint)
}

// AppInfo asks the OAuth server at serverEndpoint (a trusted one, see OAuthServer)
// what accessToken was issued for. A token the server refuses gives ErrForbidden.
func (s *Store) AppInfo(ctx context.Context, serverEndpoint, accessToken string) (*AppInfo, error) {
	if accessToken == "" {
		return nil, fmt.Errorf("app.info: no access token: %w", ErrForbidden)
	}
	auth := staticAuth{creds: bitrix.Credentials{Endpoint: serverEndpoint, AccessToken: accessToken}}
	opts := s.clientOptions()
	opts.Limiter = nil // the OAuth server is not a portal's bucket
	c := bitrix.NewClient("oauth-server", auth, opts)
	var w appInfoWire
	if err := c.Call(ctx, "app.info", nil, &w); err != nil {
		return nil, fmt.Errorf("app.info at %s: %w", serverEndpoint, callerFault(err))
	}
	info := &AppInfo{ClientID: w.ClientID, Scope: w.Scope, UserID: int64(w.UserID)}
	if w.Install != nil {
		info.Install = AppInstall{
			Installed:      w.Install.Installed,
			Version:        strings.Trim(string(w.Install.Version), `"`),
			Status:         w.Install.Status,
			Scope:          w.Install.Scope,
			Domain:         w.Install.Domain,
			ClientEndpoint: w.Install.ClientEndpoint,
			MemberID:       w.Install.MemberID,
		}
	}
	return info, nil
}

// VerifyAppInfo checks accessToken with the OAuth server trusted for claimedServer:
// it must be issued to this application, on the portal memberID, and, when domain
// is not empty, on that domain. Any mismatch gives ErrForbidden.
func (s *Store) VerifyAppInfo(ctx context.Context, claimedServer, accessToken, memberID,
	domain string) (*AppInfo, error) {
	info, err := s.AppInfo(ctx, s.OAuthServer(claimedServer), accessToken)
	if err != nil {
		return nil, err
	}
	switch {
	case info.ClientID != s.cfg.ClientID:
		return nil, fmt.Errorf("verify portal %s: token issued to another application: %w",
			memberID, ErrForbidden)
	case info.Install.MemberID != memberID:
		return nil, fmt.Errorf("verify portal %s: token belongs to another portal: %w",
			memberID, ErrForbidden)
	case domain != "" && !sameHost(domain, info.Install.Domain):
		return nil, fmt.Errorf("verify portal %s: domain does not match: %w", memberID, ErrForbidden)
	case checkEndpoint(info.Install.ClientEndpoint) != nil:
		return nil, fmt.Errorf("verify portal %s: OAuth server gave no usable client endpoint", memberID)
	}
	return info, nil
}

// sameHost compares two host[:port] names, ignoring case and default ports.
func sameHost(a, b string) bool {
	return trimDefaultPort(strings.ToLower(a)) == trimDefaultPort(strings.ToLower(b))
}

func trimDefaultPort(h string) string {
	host, port, err := net.SplitHostPort(h)
	if err == nil && (port == "443" || port == "80") {
		return host
	}
	return h
}

// callerFault marks REST errors that mean the caller's token is no good as
// ErrForbidden; other errors (network, server trouble) pass unchanged.
func callerFault(err error) error {
	for _, e := range []error{bitrix.ErrExpiredToken, bitrix.ErrInvalidToken, bitrix.ErrNoAuth,
		bitrix.ErrAccessDenied, bitrix.ErrInsufficientScope, ErrForbidden} {
		if errors.Is(err, e) {
			return fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	var be *bitrix.Error
	if errors.As(err, &be) && (be.Status == 401 || be.Status == 403) {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	return err
}
