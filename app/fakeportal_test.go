package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestFakePortalCommand runs `fakeportal` as a person would and uses its page:
// the demo portal lists its people, and a lead added through the page is there.
func TestFakePortalCommand(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFakePortal(ctx, []string{"-addr", addr}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runFakePortal() = %v", err)
		}
	})

	page := "http://" + addr + "/portal/demo/"
	body := getWhenUp(t, page)
	for _, want := range []string{"Boris", "Petrov"} {
		if !strings.Contains(body, want) {
			t.Errorf("demo portal page lacks %q", want)
		}
	}
	form := url.Values{"title": {"Lead from the page"}, "name": {"Zoe"}}
	resp, err := http.PostForm(page+"ui/lead", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST ui/lead = %s, want the page again", resp.Status)
	}
	if body := getWhenUp(t, page); !strings.Contains(body, "Lead from the page") {
		t.Errorf("the lead added through the page is not listed")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// getWhenUp GETs url, retrying while the server is still starting.
func getWhenUp(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			t.Fatalf("GET %s = %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
