package intake

import (
	"context"
	"errors"
	"testing"

	"github.com/leadrouter/leadrouter/internal/redistest"
)

// TestOnRedisCluster runs a source's life and a post's way to a lead on a real
// three-node cluster, where a script or transaction over two slots would fail.
func TestOnRedisCluster(t *testing.T) {
	t.Parallel()
	b := setupOn(t, redistest.StartCluster(t).Client(t), true)
	ctx := context.Background()
	member := b.portal.MemberID()

	src, secret, err := b.store.Create(ctx, member, "Landing", Options{RatePerMinute: 5})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	if _, err := b.store.Authenticate(ctx, src.ID, secret); err != nil {
		t.Fatalf("Authenticate() error = %v", err)
	}
	if _, err := b.svc.Allow(ctx, src); err != nil {
		t.Fatalf("Allow() error = %v", err)
	}
	rc := b.settled(t, src, b.accept(t, src, annaPost, "").IntakeID)
	if rc.State != Created || owner(b.lead(t, rc.LeadID)) != ann {
		t.Fatalf("post = %+v, want created for Ann", rc)
	}
	if again := b.accept(t, src, annaPost, ""); again.LeadID != rc.LeadID {
		t.Errorf("repeat = %+v, want lead %d", again, rc.LeadID)
	}

	b.portal.SetAccessDenied(true)
	dead := b.settled(t, src, b.accept(t, src, `{"name":"Dead letter"}`, "").IntakeID)
	b.portal.SetAccessDenied(false)
	if err := b.svc.Retry(ctx, member, dead.IntakeID); err != nil {
		t.Fatalf("Retry() error = %v", err)
	}
	if got := b.settled(t, src, dead.IntakeID); got.State != Created {
		t.Errorf("retried post = %+v, want created", got)
	}

	if _, err := b.store.Rotate(ctx, member, src.ID); err != nil {
		t.Fatalf("Rotate() error = %v", err)
	}
	if err := b.store.Revoke(ctx, member, src.ID); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if _, err := b.store.Authenticate(ctx, src.ID, secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("Authenticate(revoked) error = %v, want ErrNotFound", err)
	}
}
