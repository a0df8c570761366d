package bitrix_test

import (
	"sync"
	"testing"
	"time"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/internal/redistest"
)

// BenchmarkBurstAgainstBucket sends a burst of calls from three app instances
// sharing a RedisLimiter to a fake portal that enforces the leaky bucket, and
// reports the wall time divided by the least time the bucket allows for them
// (target ≤ 1.25) and how many calls the portal refused (target 0).
func BenchmarkBurstAgainstBucket(b *testing.B) {
	const rate, burst, calls = 50, 10, 110
	srv := bitrixtest.Start(b, bitrixtest.Options{Rate: rate, Burst: burst})
	redis := redistest.Start(b)
	minimum := time.Duration(float64(calls-burst) / rate * float64(time.Second))
	var ratio, refused float64
	for b.Loop() {
		p := srv.NewPortal(bitrixtest.PortalOptions{})
		auth := newPortalAuth(srv, p)
		var clients []*bitrix.Client
		for range 3 {
			l := bitrix.NewRedisLimiter(redis.Client(b), rate, burst)
			clients = append(clients, bitrix.NewClient(p.MemberID(), auth, bitrix.Options{Limiter: l}))
		}
		began := time.Now()
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				if err := clients[i%3].Call(b.Context(), "profile", nil, nil); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		ratio += float64(time.Since(began)) / float64(minimum)
		for _, r := range srv.Requests() {
			if r.MemberID == p.MemberID() && r.Error == "QUERY_LIMIT_EXCEEDED" {
				refused++
			}
		}
	}
	b.ReportMetric(ratio/float64(b.N), "wall/bucket-min")
	b.ReportMetric(refused/float64(b.N), "refused/op")
}
