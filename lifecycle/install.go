package lifecycle

import (
	"context"
	"fmt"
	"net/url"

	"github.com/leadrouter/leadrouter/oauth"
)

// InstallResult is what the install page shows.
type InstallResult struct {
	Portal *oauth.Portal
	User   oauth.FrameUser
	Bound  *BindReport
	// Finish reports whether the page must still call installFinish: false when
	// the OAuth server already counts the installation as finished.
	Finish bool
}

// Install handles the install page the portal opens for an administrator: it
// verifies the posted AUTH_ID with the OAuth server's app.info (client_id,
// member_id and domain must match) and the user with the portal's profile, stores
// the administrator's tokens, and binds events and placements. The posted DOMAIN
// and SERVER_ENDPOINT are never called.
func (l *Lifecycle) Install(ctx context.Context, query, form url.Values) (*InstallResult, error) {
	req, err := oauth.ParseFrame(query, form)
	if err != nil {
		return nil, err
	}
	if req.RefreshID == "" {
		return nil, fmt.Errorf("%w: no REFRESH_ID", oauth.ErrBadFrame)
	}
	info, err := l.store.VerifyAppInfo(ctx, req.ServerEndpoint, req.AuthID, req.MemberID, req.Domain)
	if err != nil {
		return nil, err
	}
	prof, err := l.store.Profile(ctx, req.MemberID, info.Install.ClientEndpoint, req.AuthID)
	if err != nil {
		return nil, err
	}
	if info.UserID != 0 && info.UserID != prof.ID {
		return nil, fmt.Errorf("install on portal %s: token owner differs: %w",
			req.MemberID, oauth.ErrForbidden)
	}
	if !prof.Admin {
		return nil, fmt.Errorf("install on portal %s by user %d: %w", req.MemberID, prof.ID, ErrNotAdmin)
	}
	scope := info.Install.Scope
	if scope == "" {
		scope = info.Scope
	}
	p, err := l.store.SaveInstall(ctx, oauth.Install{
		MemberID:         req.MemberID,
		Domain:           info.Install.Domain,
		ClientEndpoint:   info.Install.ClientEndpoint,
		ServerEndpoint:   l.store.OAuthServer(req.ServerEndpoint),
		Scope:            scope,
		Version:          info.Install.Version,
		AppStatus:        info.Install.Status,
		Lang:             req.Lang,
		ApplicationToken: req.ApplicationToken,
		InstalledBy:      prof.ID,
		Tokens: oauth.Tokens{
			AccessToken:  req.AuthID,
			RefreshToken: req.RefreshID,
			Expiry:       expiryIn(req.AuthExpires),
			UserID:       prof.ID,
		},
		Installed: info.Install.Installed,
	})
	if err != nil {
		return nil, err
	}
	l.log.InfoContext(ctx, "install page verified", "member_id", p.MemberID, "user_id", prof.ID,
		"status", p.Status)
	report, err := l.Bind(ctx, p.MemberID)
	if err != nil {
		return nil, err
	}
	user := oauth.FrameUser{
		MemberID:  p.MemberID,
		UserID:    prof.ID,
		Admin:     true,
		Lang:      req.Lang,
		Name:      prof.FullName(),
		Placement: req.Placement,
		Origin:    p.Origin(),
	}
	return &InstallResult{Portal: p, User: user, Bound: report, Finish: !info.Install.Installed}, nil
}
