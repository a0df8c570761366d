package intake

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Forget is the uninstall hook of intake (lifecycle.UninstallHook). The portal is
// already marked uninstalled, so its intake URLs refuse posts, and posts it
// accepted earlier wait for a reinstall like those of a portal that is down.
//
// With clean set, Forget also deletes what the portal keeps outside its own keys:
// the global entry of each of its sources, which names the portal, and its place
// in the workers' index; then its sources, stream and dead letters. Its other
// intake keys (posts, idempotency keys, rate counters) carry the portal's hash tag
// and are removed with the rest of its data.
func (s *Service) Forget(ctx context.Context, memberID string, clean bool) error {
	s.mu.Lock()
	delete(s.grouped, memberID)
	delete(s.cursors, memberID)
	s.mu.Unlock()
	if !clean {
		return nil
	}
	ids, err := s.rdb.SMembers(ctx, keyspace.IntakeSources(memberID)).Result()
	if err != nil {
		return fmt.Errorf("list intake sources of portal %s: %w", memberID, err)
	}
	// Each global key lives in a slot of its own: one command per key.
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Del(ctx, keyspace.IntakeSourcePortal(id))
		}
		p.ZRem(ctx, keyspace.IntakePortals(), memberID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete intake index of portal %s: %w", memberID, err)
	}
	keys := []string{keyspace.IntakeSources(memberID), keyspace.IntakeStream(memberID),
		keyspace.IntakeDead(memberID)}
	for _, id := range ids {
		keys = append(keys, keyspace.IntakeSource(memberID, id))
	}
	if err := s.rdb.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("delete intake sources of portal %s: %w", memberID, err)
	}
	return nil
}
