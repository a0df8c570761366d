package assets

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStaticServedUnderHash(t *testing.T) {
	t.Parallel()
	a, err := New()
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	for _, name := range []string{"app.css", "app.js", "leadtab.js"} {
		u := a.URL(name)
		if !strings.HasPrefix(u, Prefix) || !strings.HasSuffix(u, "/"+name) {
			t.Errorf("URL(%q) = %q, want %s<hash>/%s", name, u, Prefix, name)
		}
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, u, nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
			t.Errorf("GET %s = %d, Cache-Control %q", u, rec.Code, rec.Header().Get("Cache-Control"))
		}
		stale := strings.Replace(u, Prefix, Prefix+"0", 1)
		rec = httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, stale, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s (wrong hash) = %d, want 404", stale, rec.Code)
		}
	}
}

func TestLang(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{name: "russian", in: "ru", want: "ru"},
		{name: "upper case", in: "RU", want: "ru"},
		{name: "english", in: "en", want: "en"},
		{name: "german falls back", in: "de", want: "en"},
		{name: "empty", in: "", want: "en"},
	}
	for _, tt := range tests {
		if got := Lang(tt.in); got != tt.want {
			t.Errorf("%s: Lang(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestTranslationsComplete checks that every text the English page has is also
// translated into Russian, and not left in English by accident.
func TestTranslationsComplete(t *testing.T) {
	t.Parallel()
	a, err := New()
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	en, ru := a.Dict("en"), a.Dict("ru")
	same := 0
	for k, v := range en {
		if ru[k] == v && !strings.HasPrefix(k, "field.UTM") && k != "app.title" && k != "field.EMAIL" {
			same++
			t.Logf("not translated: %s", k)
		}
	}
	if same > 0 {
		t.Errorf("%d Russian texts equal the English ones", same)
	}
	if got := a.Dict("de").T("tab.teams"); got != "Teams" {
		t.Errorf("Dict(de).T(tab.teams) = %q, want the English text", got)
	}
}

func TestRenderEscapes(t *testing.T) {
	t.Parallel()
	a, err := New()
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	var buf bytes.Buffer
	body := struct{ Heading, Message, RequestID string }{
		Heading: "<script>alert(1)</script>", Message: `"><img src=x onerror=alert(1)>`, RequestID: "r1"}
	err = a.Render(&buf, "error", map[string]any{"Lang": "en", "Title": "t", "L": a.Dict("en"),
		"Nonce": "n", "SDKURL": "", "Script": "", "ConfigJSON": `{"x":"</script>"}`, "Body": body})
	if err != nil {
		t.Fatalf("Render() = %v", err)
	}
	out := buf.String()
	for _, bad := range []string{"<script>alert", "<img src=x", `"x":"</script>"`} {
		if strings.Contains(out, bad) {
			t.Errorf("rendered page contains %q unescaped", bad)
		}
	}
}
