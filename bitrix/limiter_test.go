package bitrix

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/internal/redistest"
	"github.com/leadrouter/leadrouter/keyspace"
)

const testMember = "0123456789abcdef0123456789abcdef"

// TestRedisLimiterSharedBucket checks that several app instances, each with its
// own Redis connection, together stay inside one portal's bucket.
func TestRedisLimiterSharedBucket(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const (
		rate      = 100.0
		burst     = 10
		instances = 3
		requests  = 60
	)
	var limiters []*RedisLimiter
	for range instances {
		limiters = append(limiters, NewRedisLimiter(srv.Client(t), rate, burst))
	}

	var mu sync.Mutex
	var granted []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			if err := limiters[i%instances].Wait(t.Context(), testMember); err != nil {
				t.Errorf("Wait() error = %v", err)
				return
			}
			mu.Lock()
			granted = append(granted, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(granted)
	if len(granted) != requests {
		t.Fatalf("%d requests granted, want %d", len(granted), requests)
	}

	// No window may hold more requests than the bucket plus what drained
	// during it; two more absorb timers that fire late.
	for i := range granted {
		for j := i; j < len(granted); j++ {
			n := j - i + 1
			allowed := burst + rate*(granted[j]-granted[i]).Seconds() + 2
			if float64(n) > allowed {
				t.Fatalf("%d requests within %v, bucket allows %.1f",
					n, granted[j]-granted[i], allowed)
			}
		}
	}
	// The requests beyond the bucket had to wait for it to drain.
	minimum := time.Duration(float64(requests-burst) / rate * float64(time.Second))
	if last := granted[len(granted)-1]; last < minimum-5*time.Millisecond {
		t.Errorf("last request granted after %v, want at least %v", last, minimum)
	}
}

// TestRedisLimiterDeadline checks that a wait longer than the caller's deadline
// fails at once and takes no slot.
func TestRedisLimiterDeadline(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	l := NewRedisLimiter(rdb, 0.1, 2) // the next slot is 10 s away
	for range 2 {
		if err := l.Wait(t.Context(), testMember); err != nil {
			t.Fatalf("Wait() within the bucket error = %v", err)
		}
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		began := time.Now()
		err := l.Wait(ctx, testMember)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !Temporary(err) {
			t.Fatalf("Wait() on a full bucket error = %v, want a temporary deadline error", err)
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("Wait() on a full bucket took %v, want a refusal before the deadline", took)
		}
	}
	level, err := rdb.HGet(t.Context(), keyspace.RateLimit(testMember), "level").Float64()
	if err != nil {
		t.Fatalf("read bucket level: %v", err)
	}
	if level > 2 {
		t.Errorf("bucket level = %.2f after refused waits, want at most 2", level)
	}
}

// TestRedisLimiterBackoff checks that a refusal by the portal holds back the
// next request until the time the portal named, or one drain interval.
func TestRedisLimiterBackoff(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	tests := []struct {
		name    string
		rate    float64
		until   time.Duration // from now; 0 = the portal named no time
		atLeast time.Duration
	}{
		{name: "until a named time", rate: 1000, until: 300 * time.Millisecond,
			atLeast: 250 * time.Millisecond},
		{name: "one drain interval", rate: 5, atLeast: 150 * time.Millisecond},
	}
	for i, tt := range tests {
		member := testMember[:31] + string(rune('a'+i))
		t.Run(tt.name, func(t *testing.T) {
			l := NewRedisLimiter(rdb, tt.rate, 50)
			if err := l.Wait(t.Context(), member); err != nil {
				t.Fatalf("Wait() error = %v", err)
			}
			var until time.Time
			if tt.until > 0 {
				until = time.Now().Add(tt.until)
			}
			l.Backoff(t.Context(), member, until)
			began := time.Now()
			if err := l.Wait(t.Context(), member); err != nil {
				t.Fatalf("Wait() after Backoff error = %v", err)
			}
			if took := time.Since(began); took < tt.atLeast {
				t.Errorf("Wait() after Backoff took %v, want at least %v", took, tt.atLeast)
			}
		})
	}
}

func TestRedisLimiterMethodBlock(t *testing.T) {
	t.Parallel()
	rdb := redistest.Start(t).Client(t)
	l := NewRedisLimiter(rdb, 1000, 50)
	reset := time.Now().Add(time.Minute).Truncate(time.Millisecond)
	l.BlockMethod(t.Context(), testMember, "crm.lead.list", reset)

	err := l.WaitMethod(t.Context(), testMember, "crm.lead.list")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrOperationLimit) {
		t.Fatalf("WaitMethod(blocked) error = %v, want ErrOperationLimit", err)
	}
	if !e.ResetAt.Equal(reset) {
		t.Errorf("ResetAt = %v, want %v", e.ResetAt, reset)
	}
	if err := l.WaitMethod(t.Context(), testMember, "crm.lead.get"); err != nil {
		t.Errorf("WaitMethod(other method) error = %v, want nil", err)
	}
	other := NewRedisLimiter(redis.NewClient(&redis.Options{Addr: rdb.Options().Addr}), 1000, 50)
	if err := other.WaitMethod(t.Context(), testMember, "crm.lead.list"); !errors.Is(err, ErrOperationLimit) {
		t.Errorf("WaitMethod(blocked) on another instance error = %v, want ErrOperationLimit", err)
	}
	ttl, err := rdb.PTTL(t.Context(), keyspace.RateLimit(testMember)).Result()
	if err != nil || ttl < 59*time.Second || ttl > 62*time.Second {
		t.Errorf("PTTL = %v, %v; want the key kept until the block ends", ttl, err)
	}
}

// TestRedisLimiterPortalLimits checks that a portal on a larger plan gets its
// larger bucket while others keep the default.
func TestRedisLimiterPortalLimits(t *testing.T) {
	t.Parallel()
	rdb := redistest.New(t)
	l := NewRedisLimiter(rdb, 0.1, 3)
	enterprise := "ffffffffffffffffffffffffffffffff"
	large := "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	l.SetPortalLimits(func(memberID string) (Limit, bool) {
		switch memberID {
		case enterprise:
			return Limit{Rate: 0.1, Burst: 6}, true
		case large:
			return Limit{Rate: 0.1, Burst: 50}, true
		}
		return Limit{}, false
	})
	immediate := func(member string) int {
		n := 0
		for range 60 {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			if l.Wait(ctx, member) == nil {
				n++
			}
			cancel()
		}
		return n
	}
	if got := immediate(testMember); got != 3 {
		t.Errorf("standard portal got %d immediate slots, want 3", got)
	}
	if got := immediate(enterprise); got != 6 {
		t.Errorf("enterprise portal got %d immediate slots, want 6", got)
	}
	if got := immediate(large); got != 48 {
		t.Errorf("portal with a bucket of 50 got %d immediate slots, want 48 (2 headroom)", got)
	}
}

func TestRedisLimiterCluster(t *testing.T) {
	t.Parallel()
	rdb := redistest.StartCluster(t).Client(t)
	l := NewRedisLimiter(rdb, 0.1, 2)
	for range 2 {
		if err := l.Wait(t.Context(), testMember); err != nil {
			t.Fatalf("Wait() on a cluster error = %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, testMember); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait() on a full bucket in a cluster error = %v, want DeadlineExceeded", err)
	}
}

// BenchmarkRedisLimiterWait measures one slot taken from a bucket that never
// fills: the cost the limiter adds to every request.
func BenchmarkRedisLimiterWait(b *testing.B) {
	rdb := redistest.Start(b).Client(b)
	l := NewRedisLimiter(rdb, 1e9, 1e9)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Wait(context.Background(), testMember); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
