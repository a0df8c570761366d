package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/oauth"
)

// HandleAppEvent handles ONAPPINSTALL, ONAPPUPDATE and ONAPPUNINSTALL. An event it
// cannot trust gives an error wrapping oauth.ErrForbidden and changes nothing;
// any other event name gives ErrNotAppEvent.
func (l *Lifecycle) HandleAppEvent(ctx context.Context, ev *bitrix.Event) error {
	if err := oauth.CheckMemberID(ev.Auth.MemberID); err != nil {
		return fmt.Errorf("%s: %w", ev.Name, err)
	}
	var err error
	switch ev.Name {
	case bitrix.EventAppInstall, bitrix.EventAppUpdate:
		err = l.installed(ctx, ev)
	case bitrix.EventAppUninstall:
		err = l.uninstalled(ctx, ev)
	default:
		return fmt.Errorf("%s: %w", ev.Name, ErrNotAppEvent)
	}
	outcome := "ok"
	switch {
	case errors.Is(err, oauth.ErrForbidden):
		outcome = "forbidden"
	case err != nil:
		outcome = "failed"
	}
	appEvents.WithLabelValues(ev.Name, outcome).Inc()
	return err
}

// installed handles ONAPPINSTALL and ONAPPUPDATE. The event is trusted when it
// carries the stored application token; otherwise (a first install, a reinstall,
// an update that brings a new token) its access token must pass app.info.
func (l *Lifecycle) installed(ctx context.Context, ev *bitrix.Event) error {
	memberID := ev.Auth.MemberID
	if ev.Auth.ApplicationToken == "" {
		return fmt.Errorf("%s for portal %s without application token: %w",
			ev.Name, memberID, oauth.ErrForbidden)
	}
	cur, err := l.store.Portal(ctx, memberID)
	if err != nil && !errors.Is(err, oauth.ErrUnknownPortal) {
		return err
	}
	a := oauth.Activation{
		MemberID:         memberID,
		ApplicationToken: ev.Auth.ApplicationToken,
		Version:          ev.Data["VERSION"],
		AppStatus:        ev.Auth.Status,
		UserID:           ev.Auth.UserID,
		Tokens:           eventTokens(ev.Auth),
	}
	if lang := ev.Data["LANGUAGE_ID"]; lang != "" {
		a.Lang = oauth.Lang(lang)
	}
	trusted := cur != nil && cur.Status != oauth.StatusDeleted &&
		oauth.SameToken(cur.ApplicationToken, ev.Auth.ApplicationToken)
	if !trusted {
		info, err := l.store.VerifyAppInfo(ctx, ev.Auth.ServerEndpoint, ev.Auth.AccessToken,
			memberID, ev.Auth.Domain)
		if err == nil {
			err = l.byAdmin(ctx, memberID, info, ev.Auth.AccessToken)
		}
		if err != nil {
			l.log.WarnContext(ctx, "application event refused", "member_id", memberID, "event", ev.Name,
				"error", err)
			return err
		}
		a.Domain, a.ClientEndpoint = info.Install.Domain, info.Install.ClientEndpoint
		a.ServerEndpoint = l.store.OAuthServer(ev.Auth.ServerEndpoint)
		a.Scope = info.Install.Scope
		if a.Version == "" {
			a.Version = info.Install.Version
		}
	}
	p, before, err := l.store.Activate(ctx, a)
	if err != nil {
		return err
	}
	l.log.InfoContext(ctx, "portal activated", "member_id", memberID, "event", ev.Name,
		"was", before, "version", p.Version)
	if ev.Name == bitrix.EventAppUpdate || p.BoundAt.IsZero() || p.BoundVersion != p.Version {
		l.bindSoon(ctx, memberID)
	}
	return nil
}

// byAdmin checks that the access token of an application event that brings a new
// application token belongs to an administrator of the portal, as only they install
// and update applications: any user who opens the application holds a token that
// app.info confirms, and must not be able to replace the portal's application token.
func (l *Lifecycle) byAdmin(ctx context.Context, memberID string, info *oauth.AppInfo,
	accessToken string) error {
	prof, err := l.store.Profile(ctx, memberID, info.Install.ClientEndpoint, accessToken)
	if err != nil {
		return err
	}
	if info.UserID != 0 && info.UserID != prof.ID {
		return fmt.Errorf("event on portal %s: token owner differs: %w", memberID,
			oauth.ErrForbidden)
	}
	if !prof.Admin {
		return fmt.Errorf("event on portal %s from user %d, not an administrator: %w",
			memberID, prof.ID, oauth.ErrForbidden)
	}
	return nil
}

// eventTokens returns the pair an application event carries, if any.
func eventTokens(a bitrix.EventAuth) oauth.Tokens {
	t := oauth.Tokens{AccessToken: a.AccessToken, RefreshToken: a.RefreshToken, UserID: a.UserID}
	switch {
	case a.Expires > 0:
		t.Expiry = time.Unix(a.Expires, 0)
	case a.ExpiresIn > 0:
		t.Expiry = expiryIn(a.ExpiresIn)
	}
	return t
}

func expiryIn(seconds int64) time.Time {
	if seconds <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(seconds) * time.Second)
}

// uninstalled handles ONAPPUNINSTALL: only the stored application token proves
// it. The portal is marked deleted and its tokens dropped; with CLEAN=1 every key
// of the portal is removed too.
func (l *Lifecycle) uninstalled(ctx context.Context, ev *bitrix.Event) error {
	memberID := ev.Auth.MemberID
	cur, err := l.store.Portal(ctx, memberID)
	if errors.Is(err, oauth.ErrUnknownPortal) {
		return fmt.Errorf("uninstall of unknown portal %s: %w", memberID, oauth.ErrForbidden)
	}
	if err != nil {
		return err
	}
	if cur.Status == oauth.StatusDeleted {
		return nil // a repeated delivery; nothing is left to protect
	}
	if !oauth.SameToken(cur.ApplicationToken, ev.Auth.ApplicationToken) {
		l.log.WarnContext(ctx, "uninstall refused: wrong application token", "member_id", memberID)
		return fmt.Errorf("uninstall of portal %s: %w", memberID, oauth.ErrForbidden)
	}
	clean := ev.Data["CLEAN"] == "1"
	if err := l.store.Uninstall(ctx, memberID); err != nil {
		return err
	}
	for _, h := range l.uninstallHooks() {
		if err := h(ctx, memberID, clean); err != nil {
			l.log.ErrorContext(ctx, "uninstall hook failed", "member_id", memberID, "error", err)
		}
	}
	if clean {
		n, err := l.store.Forget(ctx, memberID)
		if err != nil {
			return err
		}
		l.log.InfoContext(ctx, "portal data removed", "member_id", memberID, "keys", n)
	}
	l.log.InfoContext(ctx, "portal uninstalled", "member_id", memberID, "clean", clean)
	return nil
}
