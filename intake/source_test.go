package intake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
)

func TestStoreLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.New(t)
	store := NewStore(rdb)
	clock := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	store.now = func() time.Time { clock = clock.Add(time.Second); return clock }

	src, secret, err := store.Create(ctx, "portal-a", "  Spring landing ", Options{CRMSource: "web"})
	if err != nil {
		t.Fatalf("Create() error = %v", err)
	}
	wantOpts := Options{CRMSource: "WEB", RatePerMinute: DefaultRatePerMinute,
		IdempotencyWindow: DefaultIdempotencyWindow}
	if src.Name != "Spring landing" || src.Options != wantOpts || len(src.ID) != 32 {
		t.Errorf("Create() = %+v, want name trimmed, defaults %+v, 32-hex ID", src, wantOpts)
	}
	if len(secret) < 40 {
		t.Errorf("Create() secret has %d characters, want a long random one", len(secret))
	}
	stored, err := rdb.HGetAll(ctx, keyspace.IntakeSource("portal-a", src.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range stored {
		if v == secret {
			t.Errorf("field %s holds the secret itself; only its hash may be stored", k)
		}
	}

	got, err := store.Authenticate(ctx, src.ID, secret)
	if err != nil || got.MemberID != "portal-a" {
		t.Fatalf("Authenticate(right secret) = %+v, %v; want the source", got, err)
	}
	if _, err := store.Authenticate(ctx, src.ID, secret+"x"); !errors.Is(err, ErrBadSecret) {
		t.Errorf("Authenticate(wrong secret) error = %v, want ErrBadSecret", err)
	}

	other, _, err := store.Create(ctx, "portal-b", "Other portal", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rotate(ctx, "portal-a", other.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rotate(another portal's source) error = %v, want ErrNotFound", err)
	}
	if err := store.Revoke(ctx, "portal-a", other.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke(another portal's source) error = %v, want ErrNotFound", err)
	}

	rotated, err := store.Rotate(ctx, "portal-a", src.ID)
	if err != nil {
		t.Fatalf("Rotate() error = %v", err)
	}
	if _, err := store.Authenticate(ctx, src.ID, secret); !errors.Is(err, ErrBadSecret) {
		t.Errorf("Authenticate(old secret after rotation) error = %v, want ErrBadSecret", err)
	}
	if _, err := store.Authenticate(ctx, src.ID, rotated); err != nil {
		t.Errorf("Authenticate(new secret) error = %v", err)
	}

	second, _, err := store.Create(ctx, "portal-a", "Ads", Options{AllowResponsible: true,
		RatePerMinute: 5, IdempotencyWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.List(ctx, "portal-a")
	if err != nil {
		t.Fatalf("List() error = %v", err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	if diff := cmp.Diff([]string{src.ID, second.ID}, ids); diff != "" {
		t.Errorf("List() IDs mismatch (-want +got):\n%s", diff)
	}
	if list[1].Options != second.Options {
		t.Errorf("List()[1].Options = %+v, want %+v", list[1].Options, second.Options)
	}

	if err := store.Revoke(ctx, "portal-a", src.ID); err != nil {
		t.Fatalf("Revoke() error = %v", err)
	}
	if _, err := store.Authenticate(ctx, src.ID, rotated); !errors.Is(err, ErrNotFound) {
		t.Errorf("Authenticate(revoked) error = %v, want ErrNotFound", err)
	}
	if list, _ := store.List(ctx, "portal-a"); len(list) != 1 {
		t.Errorf("List() after revoke has %d sources, want 1", len(list))
	}
}

func TestStoreValidation(t *testing.T) {
	t.Parallel()
	store := NewStore(redistest.New(t))
	tests := []struct {
		name  string
		title string
		opts  Options
		field string
	}{
		{"empty name", " ", Options{}, "name"},
		{"bad CRM source", "x", Options{CRMSource: "web site"}, "crm_source"},
		{"negative rate", "x", Options{RatePerMinute: -1}, "rate_per_minute"},
		{"tiny window", "x", Options{IdempotencyWindow: time.Millisecond}, "idempotency_window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := store.Create(context.Background(), "p", tt.title, tt.opts)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Fields[tt.field] == "" {
				t.Errorf("Create() error = %v, want a ValidationError on %s", err, tt.field)
			}
		})
	}
}

// TestSourcesGoWithPortal checks that removing a portal's keys, as an uninstall
// with CLEAN=1 does, kills its intake URLs.
func TestSourcesGoWithPortal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.New(t)
	store := NewStore(rdb)
	src, secret, err := store.Create(ctx, "portal-gone", "Landing", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = redistest.ForEachNode(ctx, rdb, func(ctx context.Context, node *redis.Client) error {
		keys, err := node.Keys(ctx, keyspace.PortalPattern("portal-gone")).Result()
		if err != nil || len(keys) == 0 {
			return err
		}
		return node.Del(ctx, keys...).Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Authenticate(ctx, src.ID, secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("Authenticate() after the portal's keys went = %v, want ErrNotFound", err)
	}
}
