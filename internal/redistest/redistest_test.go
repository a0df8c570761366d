package redistest

import (
	"context"
	"testing"
)

func TestStart(t *testing.T) {
	t.Parallel()
	rdb := Start(t).Client(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET = %v", err)
	}
	if got, err := rdb.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET = %q, %v, want v", got, err)
	}
}

func TestStartCluster(t *testing.T) {
	t.Parallel()
	rdb := StartCluster(t).Client(t)
	ctx := context.Background()
	// Keys of one hash tag share a slot, so a script may touch them together;
	// keys of two tags may not.
	err := rdb.Eval(ctx, "redis.call('SET', KEYS[1], 1); return redis.call('INCR', KEYS[2])",
		[]string{"{p}:a", "{p}:b"}).Err()
	if err != nil {
		t.Fatalf("script over one hash tag = %v", err)
	}
	err = rdb.Eval(ctx, "return redis.call('MGET', KEYS[1], KEYS[2])", []string{"{p}:a", "{q}:b"}).Err()
	if err == nil {
		t.Fatal("script over two hash tags succeeded, want CROSSSLOT")
	}
}
