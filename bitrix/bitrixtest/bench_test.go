package bitrixtest

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkIdlePortals measures the memory of 10,000 portals with the app installed
// and nothing else: the scale of an operator's deployment.
func BenchmarkIdlePortals(b *testing.B) {
	for range b.N {
		s := NewServer(Options{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const n = 10_000
		for i := range n {
			p := s.NewPortal(PortalOptions{Name: "p" + strconv.Itoa(i)})
			p.RegisterApp(App{HandlerURL: "http://app.example/app"})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/portal")
		s.Close()
	}
}

// BenchmarkLeadBurst creates 1,000 leads at once on one portal and waits for every
// ONCRMLEADADD to reach the app's receiver.
func BenchmarkLeadBurst(b *testing.B) {
	for range b.N {
		b.StopTimer()
		s := NewServer(Options{})
		p := s.NewPortal(PortalOptions{})
		rc := newBenchReceiver(b)
		p.RegisterApp(App{APIOnly: true})
		p.mu.Lock()
		p.bindLocked(EventBinding{Event: "ONCRMLEADADD", Handler: rc})
		p.mu.Unlock()
		b.StartTimer()
		for i := range 1000 {
			p.AddLead(1, map[string]any{"TITLE": "burst " + strconv.Itoa(i),
				"PHONE": []map[string]any{{"VALUE": "+1555" + strconv.Itoa(i)}}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := p.WaitDeliveries(ctx, 1000); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.StopTimer()
		s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/lead")
}

// BenchmarkBatchGet reads 50 leads with one batch request over HTTP.
func BenchmarkBatchGet(b *testing.B) {
	s := NewServer(Options{Rate: -1})
	defer s.Close()
	p := s.NewPortal(PortalOptions{})
	tok := p.Tokens(1)
	cmd := map[string]any{}
	for i := 1; i <= 50; i++ {
		p.AddLead(1, map[string]any{"TITLE": "lead"})
		cmd["l"+strconv.Itoa(i)] = "crm.lead.get?id=" + strconv.Itoa(i)
	}
	body := map[string]any{"cmd": cmd}
	b.ResetTimer()
	for range b.N {
		if err := benchPost(p.ClientEndpoint()+"batch", tok.AccessToken, body); err != nil {
			b.Fatal(err)
		}
	}
}
