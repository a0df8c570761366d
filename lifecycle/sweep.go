package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/oauth"
)

// SweepReport counts what one sweep did.
type SweepReport struct {
	Finished  int // pending installs activated
	GaveUp    int // pending installs dropped as never finished
	Rebound   int // portals whose bindings were made good
	Refreshed int // idle portals whose tokens were refreshed
}

// Sweep runs one round: it finishes installs stuck in new whose installation the
// OAuth server confirms, binds again where a bind failed, and refreshes tokens
// that have not been used for KeepAliveAge. Each step handles at most SweepBatch
// portals. Several instances may sweep at once without harm; Run makes one
// instance sweep at a time anyway.
func (l *Lifecycle) Sweep(ctx context.Context) (SweepReport, error) {
	var r SweepReport
	var errs []error
	if err := l.sweepPending(ctx, &r); err != nil {
		errs = append(errs, err)
	}
	if err := l.sweepBinds(ctx, &r); err != nil {
		errs = append(errs, err)
	}
	n, err := l.store.KeepAlive(ctx, time.Now().Add(-l.cfg.KeepAliveAge), l.cfg.SweepBatch)
	r.Refreshed = n
	if err != nil {
		errs = append(errs, err)
	}
	sweepActions.WithLabelValues("finished").Add(float64(r.Finished))
	sweepActions.WithLabelValues("gave_up").Add(float64(r.GaveUp))
	sweepActions.WithLabelValues("rebound").Add(float64(r.Rebound))
	sweepActions.WithLabelValues("refreshed").Add(float64(r.Refreshed))
	return r, errors.Join(errs...)
}

func (l *Lifecycle) sweepPending(ctx context.Context, r *SweepReport) error {
	zs, err := l.store.PendingInstalls(ctx, time.Now().Add(-l.cfg.PendingAfter), l.cfg.SweepBatch)
	if err != nil {
		return err
	}
	for _, z := range zs {
		memberID, _ := z.Member.(string)
		since := time.Unix(int64(z.Score), 0)
		finished, err := l.finishPending(ctx, memberID)
		switch {
		case err != nil:
			l.log.WarnContext(ctx, "pending install not checked", "member_id", memberID, "error", err)
		case finished:
			r.Finished++
		case time.Since(since) > l.cfg.PendingGiveUp:
			_ = l.store.SetLastError(ctx, memberID, msgNotFinished)
			if err := l.store.DropPending(ctx, memberID); err == nil {
				r.GaveUp++
			}
		}
	}
	return nil
}

// finishPending asks the OAuth server whether a portal stuck in new finished its
// installation, and activates it if so, with the application token the install
// page brought (if it brought one).
func (l *Lifecycle) finishPending(ctx context.Context, memberID string) (bool, error) {
	p, err := l.store.Portal(ctx, memberID)
	if errors.Is(err, oauth.ErrUnknownPortal) {
		return false, l.store.DropPending(ctx, memberID)
	}
	if err != nil {
		return false, err
	}
	if p.Status != oauth.StatusNew {
		return false, l.store.DropPending(ctx, memberID)
	}
	info, err := l.appInfo(ctx, p)
	if err != nil {
		return false, err
	}
	if !info.Install.Installed {
		return false, nil
	}
	p, _, err = l.store.Activate(ctx, oauth.Activation{
		MemberID:         memberID,
		ApplicationToken: p.ApplicationToken,
		Version:          info.Install.Version,
	})
	if err != nil {
		return false, err
	}
	if p.ApplicationToken == "" {
		_ = l.store.SetLastError(ctx, memberID, msgNoAppToken)
	}
	l.log.InfoContext(ctx, "pending install finished by the sweep", "member_id", memberID)
	if p.BoundAt.IsZero() || p.BoundVersion != p.Version {
		l.bindSoon(ctx, memberID)
	}
	return true, nil
}

// appInfo checks the portal's install token with the OAuth server, refreshing
// it once if it expired.
func (l *Lifecycle) appInfo(ctx context.Context, p *oauth.Portal) (*oauth.AppInfo, error) {
	auth := l.store.Auth(p.MemberID)
	creds, err := auth.Credentials(ctx)
	if err != nil {
		return nil, err
	}
	server := l.store.OAuthServer(p.ServerEndpoint)
	info, err := l.store.VerifyAppInfo(ctx, server, creds.AccessToken, p.MemberID, "")
	if errors.Is(err, bitrix.ErrExpiredToken) {
		if creds, err = auth.Refresh(ctx, creds); err != nil {
			return nil, err
		}
		info, err = l.store.VerifyAppInfo(ctx, server, creds.AccessToken, p.MemberID, "")
	}
	return info, err
}

func (l *Lifecycle) sweepBinds(ctx context.Context, r *SweepReport) error {
	ids, err := l.rdb.ZRangeByScore(ctx, keyspace.PendingBinds(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(time.Now().Unix(), 10), Count: l.cfg.SweepBatch,
	}).Result()
	if err != nil {
		return fmt.Errorf("list pending binds: %w", err)
	}
	for _, id := range ids {
		p, err := l.store.Portal(ctx, id)
		if err != nil || !p.Live() {
			l.rdb.ZRem(ctx, keyspace.PendingBinds(), id)
			continue
		}
		if _, err := l.Bind(ctx, id); err != nil {
			l.log.WarnContext(ctx, "bind failed again", "member_id", id, "error", err)
			continue
		}
		_ = l.store.SetLastError(ctx, id, "")
		l.rdb.ZRem(ctx, keyspace.PendingBinds(), id)
		r.Rebound++
	}
	return nil
}

// Start runs the sweep every SweepInterval in the background until Stop. Across
// instances, a Redis lock lets one instance sweep per interval.
func (l *Lifecycle) Start(ctx context.Context) {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.run(context.WithoutCancel(ctx))
}

// Stop ends the background sweep and waits for a running round to finish or
// for ctx to end. It is safe to call more than once, and without Start.
func (l *Lifecycle) Stop(ctx context.Context) error {
	if l.stop == nil {
		return nil
	}
	l.once.Do(func() { close(l.stop) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Lifecycle) run(ctx context.Context) {
	defer close(l.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	var b [8]byte
	rand.Read(b[:])
	owner := hex.EncodeToString(b[:])
	t := time.NewTicker(l.cfg.SweepInterval)
	defer t.Stop()
	for {
		ok, err := l.rdb.SetNX(ctx, keyspace.LifecycleLock(), owner, l.cfg.SweepInterval*9/10).Result()
		if err == nil && ok {
			r, err := l.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				l.log.WarnContext(ctx, "lifecycle sweep incomplete", "error", err)
			}
			l.log.DebugContext(ctx, "lifecycle sweep done", "finished", r.Finished,
				"rebound", r.Rebound, "refreshed", r.Refreshed, "gave_up", r.GaveUp)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
