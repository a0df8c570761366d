package oauth_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// newCountingServer starts a server that counts what reaches it and answers
// like an OAuth server handing out a token, as an attacker's would.
func newCountingServer(t *testing.T, mu *sync.Mutex, hits *int) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*hits++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"x","refresh_token":"y","expires_in":3600}`))
	}))
	t.Cleanup(s.Close)
	return s.URL
}
