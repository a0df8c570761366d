package placement

import (
	"strings"
	"testing"
)

func TestAll(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, p := range All() {
		if seen[p.Code] {
			t.Errorf("placement %s listed twice", p.Code)
		}
		seen[p.Code] = true
		if !strings.HasPrefix(p.Path, "/") {
			t.Errorf("%s: Path = %q, want an absolute path", p.Code, p.Path)
		}
		for _, lang := range []string{"en", "ru"} {
			if p.Titles[lang].Title == "" {
				t.Errorf("%s: no %s title", p.Code, lang)
			}
		}
		if p.Code == Default && p.Bind {
			t.Errorf("DEFAULT is bound; the portal refuses placement.bind for it")
		}
	}
}

func TestTitle(t *testing.T) {
	t.Parallel()
	tab, ok := ByCode(LeadDetailTab)
	if !ok {
		t.Fatalf("ByCode(%s) found nothing", LeadDetailTab)
	}
	tests := []struct {
		name, lang, want string
	}{
		{name: "english", lang: "en", want: "Routing"},
		{name: "russian", lang: "ru", want: "Распределение"},
		{name: "unknown falls back to english", lang: "de", want: "Routing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tab.Title(tt.lang).Title; got != tt.want {
				t.Errorf("Title(%q) = %q, want %q", tt.lang, got, tt.want)
			}
		})
	}
}

func TestBound(t *testing.T) {
	t.Parallel()
	bound := Bound()
	if len(bound) != 1 || bound[0].Code != LeadDetailTab {
		t.Errorf("Bound() = %v, want only %s", bound, LeadDetailTab)
	}
}
