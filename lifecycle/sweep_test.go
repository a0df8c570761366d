package lifecycle_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
)

func TestSweepBindsWhatFailedToBind(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{})
	ctx := context.Background()
	p := e.newPortal(t, "acme")
	e.install(t, p)
	finish(t, p)
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)

	// The portal fails every REST call while the update's event is handled.
	e.srv.SetFaults(bitrixtest.Faults{Error5xx: 1})
	p.UpdateApp("2")
	e.waitFor(t, p.MemberID(), "told about the failed bind", func(r *oauth.Portal) bool {
		return r.Version == "2" && r.LastError != ""
	})
	if b := bindings(p); len(b) != 0 {
		t.Fatalf("bindings while the portal fails = %v, want none", b)
	}
	e.srv.SetFaults(bitrixtest.Faults{})

	r, err := e.lc.Sweep(ctx)
	if err != nil || r.Rebound != 1 {
		t.Fatalf("Sweep() = %+v, %v; want one portal bound again", r, err)
	}
	e.checkBindings(t, p)
	got, _ := e.store.Portal(ctx, p.MemberID())
	if got.LastError != "" || got.BoundVersion != "2" {
		t.Errorf("after the sweep: last error %q, bound for %q; want none and 2", got.LastError, got.BoundVersion)
	}
	if r, err := e.lc.Sweep(ctx); err != nil || r.Rebound != 0 {
		t.Errorf("second Sweep() = %+v, %v; want nothing to bind", r, err)
	}
}

func TestBackgroundSweepFinishesLostInstall(t *testing.T) {
	t.Parallel()
	e := setup(t, bitrixtest.Faults{DropEvents: 1})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	bg := lifecycle.New(e.rdb, e.store, lifecycle.Config{PublicURL: e.app, PendingAfter: time.Nanosecond,
		SweepInterval: 20 * time.Millisecond}, log)
	p := e.newPortal(t, "acme")
	e.install(t, p)
	finish(t, p)
	waitDeliveries(t, p, 1)

	bg.Start(context.Background())
	e.waitStatus(t, p.MemberID(), oauth.StatusActive)
	stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bg.Stop(stop); err != nil {
		t.Errorf("Stop() = %v", err)
	}
	if err := bg.Stop(stop); err != nil {
		t.Errorf("second Stop() = %v", err)
	}
}
