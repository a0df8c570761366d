package queue

import (
	"encoding/json"
	"testing"

	"github.com/leadrouter/leadrouter/bitrix"
	"github.com/leadrouter/leadrouter/routing"
)

// TestFirstOwner picks a returning client's owner from the records read: contacts
// before companies before leads, the oldest first, passing over records owned by
// the person the lead arrived with (a web form's user owns every lead and contact
// it made before routing).
func TestFirstOwner(t *testing.T) {
	t.Parallel()
	result := func(sections map[string]string) *bitrix.BatchResult {
		r := &bitrix.BatchResult{Result: map[string]json.RawMessage{}}
		for id, raw := range sections {
			r.Result[id] = json.RawMessage(raw)
		}
		return r
	}
	const formUser = 9
	lead := routing.Lead{ID: 70, AssignedByID: formUser}
	tests := []struct {
		name     string
		sections map[string]string
		want     int64
	}{
		{"contact first", map[string]string{
			"kCONTACT": `[{"ID":"3","ASSIGNED_BY_ID":"4"}]`,
			"kCOMPANY": `[{"ID":"5","ASSIGNED_BY_ID":"6"}]`,
			"kLEAD":    `[{"ID":"7","ASSIGNED_BY_ID":"8"}]`}, 4},
		{"company when no contact", map[string]string{
			"kCOMPANY": `[{"ID":"5","ASSIGNED_BY_ID":6}]`,
			"kLEAD":    `[{"ID":"7","ASSIGNED_BY_ID":"8"}]`}, 6},
		{"the form user's lead is passed over", map[string]string{
			"kLEAD": `[{"ID":"69","ASSIGNED_BY_ID":"9"},{"ID":"71","ASSIGNED_BY_ID":"2"}]`}, 2},
		{"the form user's contact is passed over", map[string]string{
			"kCONTACT": `[{"ID":"3","ASSIGNED_BY_ID":"9"}]`,
			"kLEAD":    `[{"ID":"7","ASSIGNED_BY_ID":"8"}]`}, 8},
		{"only the form user's records", map[string]string{
			"kLEAD": `[{"ID":"69","ASSIGNED_BY_ID":"9"}]`}, 0},
		{"nothing found", map[string]string{"kCONTACT": `[]`}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstOwner(result(tt.sections), "k", lead); got != tt.want {
				t.Errorf("firstOwner() = %d, want %d", got, tt.want)
			}
		})
	}
}
