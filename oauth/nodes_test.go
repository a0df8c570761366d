package oauth_test

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// eachNode runs fn on the single node, or on every master of a cluster, one at a
// time, and fails the test with the first error.
func eachNode(t testing.TB, rdb redis.UniversalClient, fn func(node *redis.Client) error) {
	t.Helper()
	var err error
	switch c := rdb.(type) {
	case *redis.Client:
		err = fn(c)
	case *redis.ClusterClient:
		var mu sync.Mutex // serialises fn
		err = c.ForEachMaster(context.Background(), func(_ context.Context, node *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return fn(node)
		})
	default:
		t.Fatalf("unexpected Redis client %T", rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// allKeys returns the keys matching pattern on every node.
func allKeys(t testing.TB, rdb redis.UniversalClient, pattern string) []string {
	t.Helper()
	var keys []string
	eachNode(t, rdb, func(node *redis.Client) error {
		ks, err := node.Keys(context.Background(), pattern).Result()
		keys = append(keys, ks...)
		return err
	})
	return keys
}
