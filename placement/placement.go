// Package placement lists the places inside Bitrix24 where LeadRouter shows a page:
// the main application page and the CRM placements it binds with placement.bind.
//
// The list is data for two readers: lifecycle binds every entry whose Bind is true
// on install and update, and the HTTP layer serves each entry's Path. The DEFAULT
// placement is the application's own handler URL; the portal opens it from the
// applications menu and refuses placement.bind for it, so it is listed with Bind
// false.
package placement

// Codes of the placements LeadRouter uses.
const (
	// Default is the main application page: the settings.
	Default = "DEFAULT"
	// LeadDetailTab is the tab in a lead's card that shows how the lead was routed.
	LeadDetailTab = "CRM_LEAD_DETAIL_TAB"
)

// Title is a placement's caption in one language, as placement.bind takes it in
// LANG_ALL.
type Title struct {
	Title       string
	Description string
}

// Placement is one place in the portal where the application shows a page.
type Placement struct {
	// Code is the Bitrix24 placement code, e.g. CRM_LEAD_DETAIL_TAB.
	Code string
	// Path is the application path that the portal opens for it, e.g.
	// "/placement/lead-tab"; the handler URL is the public URL joined with Path.
	Path string
	// Bind reports whether the placement is registered with placement.bind.
	Bind bool
	// Titles are the captions by Bitrix24 language code ("en", "ru").
	Titles map[string]Title
}

// Title returns the placement's caption in lang, falling back to English.
func (p Placement) Title(lang string) Title {
	if t, ok := p.Titles[lang]; ok {
		return t
	}
	return p.Titles["en"]
}

// All returns every placement LeadRouter uses, the main page first. The result is
// a fresh slice that callers may change.
func All() []Placement {
	return []Placement{
		{
			Code: Default,
			Path: "/app",
			Titles: map[string]Title{
				"en": {Title: "LeadRouter", Description: "Lead distribution settings"},
				"ru": {Title: "LeadRouter", Description: "Настройки распределения лидов"},
			},
		},
		{
			Code: LeadDetailTab,
			Path: "/placement/lead-tab",
			Bind: true,
			Titles: map[string]Title{
				"en": {Title: "Routing", Description: "Who received this lead and why"},
				"ru": {Title: "Распределение", Description: "Кто получил этот лид и почему"},
			},
		},
	}
}

// Bound returns the placements that are registered with placement.bind.
func Bound() []Placement {
	var out []Placement
	for _, p := range All() {
		if p.Bind {
			out = append(out, p)
		}
	}
	return out
}

// ByCode returns the placement with the given code.
func ByCode(code string) (Placement, bool) {
	for _, p := range All() {
		if p.Code == code {
			return p, true
		}
	}
	return Placement{}, false
}
