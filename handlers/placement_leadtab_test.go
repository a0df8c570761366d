package handlers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reason, main string
		skipped            []string
	}{
		{name: "nobody skipped", reason: "Assigned to Anna: next in turn; rule “Web”.",
			main: "Assigned to Anna: next in turn; rule “Web”."},
		{name: "english skips",
			reason: "Assigned to Anna: next in turn; rule “Web”; skipped: Boris — absent until " +
				"12 December, Clara — at 15 of 15 leads today.",
			main:    "Assigned to Anna: next in turn; rule “Web”.",
			skipped: []string{"Boris — absent until 12 December", "Clara — at 15 of 15 leads today"}},
		{name: "russian skips",
			reason:  "Ответственный: Анна — по очереди; правило «Сайт»; пропущены: Борис — перерыв.",
			main:    "Ответственный: Анна — по очереди; правило «Сайт».",
			skipped: []string{"Борис — перерыв"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			main, skipped := splitReason(tt.reason)
			if main != tt.main {
				t.Errorf("splitReason() main = %q, want %q", main, tt.main)
			}
			if diff := cmp.Diff(tt.skipped, skipped); diff != "" {
				t.Errorf("splitReason() skipped (-want +got):\n%s", diff)
			}
		})
	}
}
