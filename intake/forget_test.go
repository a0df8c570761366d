package intake

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
	"github.com/leadrouter/leadrouter/lifecycle"
)

func TestUninstallWithDataRemovesIntakeKeys(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	ctx := context.Background()
	member := b.portal.MemberID()
	src, other := b.source(t, Options{}), b.source(t, Options{})
	if _, err := b.svc.Allow(ctx, src); err != nil {
		t.Fatalf("Allow() error = %v", err)
	}
	if rc := b.settled(t, src, b.accept(t, src, annaPost, "").IntakeID); rc.State != Created {
		t.Fatalf("post = %+v, want created", rc)
	}
	b.portal.SetAccessDenied(true)
	dead := b.accept(t, other, `{"name":"Dead"}`, "")
	if rc := b.settled(t, other, dead.IntakeID); rc.State != Failed {
		t.Fatalf("post refused by the portal = %+v, want failed", rc)
	}
	if err := b.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	b.accept(t, src, `{"name":"Pending"}`, "")
	// Another portal's intake stays as it is.
	kept, _, err := b.store.Create(ctx, "other-portal", "Other", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.ZAdd(ctx, keyspace.IntakePortals(),
		redis.Z{Score: 1, Member: "other-portal"}).Err(); err != nil {
		t.Fatal(err)
	}

	b.uninstall(t, true)

	got := allKeys(t, b.rdb, "lr:intake:*")
	want := []string{keyspace.IntakePortals(), keyspace.IntakeSourcePortal(kept.ID)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("global intake keys after uninstall (-want +got):\n%s", diff)
	}
	if left := allKeys(t, b.rdb, keyspace.PortalPattern(member)); len(left) != 1 ||
		left[0] != keyspace.Portal(member) {
		t.Errorf("portal keys after uninstall = %v, want the portal's tombstone", left)
	}
	if n, _ := b.rdb.ZCard(ctx, keyspace.IntakePortals()).Result(); n != 1 {
		t.Errorf("intake portal index holds %d portals, want the other portal only", n)
	}
	if _, err := b.store.Source(ctx, src.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Source(uninstalled portal's source) error = %v, want ErrNotFound", err)
	}
}

func TestUninstallKeepingDataRefusesPostsUntilReinstall(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	ctx := context.Background()
	src := b.source(t, Options{})
	before := b.accept(t, src, `{"name":"Before"}`, "")

	b.uninstall(t, false)
	b.svc.Start(ctx)

	post, err := Parse("application/json", []byte(`{"name":"During"}`))
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := b.svc.Accept(ctx, src, post, ""); !errors.Is(err, ErrPortalGone) {
		t.Fatalf("Accept(uninstalled portal) = %+v, %v; want ErrPortalGone", rc, err)
	}
	posts := allKeys(t, b.rdb, keyspace.IntakeRecord(b.portal.MemberID(), "*"))
	if len(posts) != 1 {
		t.Errorf("posts stored = %v, want only the one from before the uninstall", posts)
	}
	if _, err := b.store.Source(ctx, src.ID); err != nil {
		t.Errorf("Source() after uninstall keeping data: %v, want the source", err)
	}
	time.Sleep(200 * time.Millisecond) // the workers try the post several times
	if rc, _ := b.svc.Status(ctx, src, before.IntakeID); rc == nil || rc.State != Pending {
		t.Fatalf("post from before the uninstall = %+v, want pending", rc)
	}

	b.install(t)
	if rc := b.settled(t, src, before.IntakeID); rc.State != Created {
		t.Errorf("post from before the uninstall after reinstall = %+v, want created", rc)
	}
	rc := b.settled(t, src, b.accept(t, src, `{"name":"After"}`, "").IntakeID)
	if rc.State != Created {
		t.Errorf("post after reinstall = %+v, want created", rc)
	}
}

// uninstall delivers the portal's ONAPPUNINSTALL to a lifecycle with intake's
// hook, as the application wires it.
func (b *bundle) uninstall(t *testing.T, clean bool) {
	t.Helper()
	life := lifecycle.New(b.rdb, b.members, lifecycle.Config{PublicURL: "https://lr.test"},
		slog.New(slog.DiscardHandler))
	life.OnUninstall(b.svc.Forget)
	flag := "0"
	if clean {
		flag = "1"
	}
	ev, err := bitrix.ParseEvent(url.Values{
		"event":                   {bitrix.EventAppUninstall},
		"auth[member_id]":         {b.portal.MemberID()},
		"auth[application_token]": {appToken},
		"data[CLEAN]":             {flag},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := life.HandleAppEvent(context.Background(), ev); err != nil {
		t.Fatalf("HandleAppEvent(ONAPPUNINSTALL) error = %v", err)
	}
}

// allKeys returns the keys matching pattern on every node, sorted.
func allKeys(t *testing.T, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	var mu sync.Mutex // guards keys
	var keys []string
	err := redistest.ForEachNode(context.Background(), rdb,
		func(ctx context.Context, node *redis.Client) error {
			found, err := node.Keys(ctx, pattern).Result()
			mu.Lock()
			keys = append(keys, found...)
			mu.Unlock()
			return err
		})
	if err != nil {
		t.Fatalf("KEYS %s: %v", pattern, err)
	}
	sort.Strings(keys)
	return keys
}
