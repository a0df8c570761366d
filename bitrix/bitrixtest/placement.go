package bitrixtest

import (
	"sort"
	"strings"
)

// PlacementBinding is a handler bound with placement.bind.
type PlacementBinding struct {
	Placement   string
	Handler     string
	Title       string
	Description string
	GroupName   string
	UserID      int
	Options     map[string]any
	LangAll     map[string]any
}

// knownPlacements are the placement codes placement.bind accepts; the value is the
// scope a code needs besides "placement".
var knownPlacements = func() map[string]string {
	m := map[string]string{
		"LEFT_MENU": "", "REST_APP_URI": "", "PAGE_BACKGROUND_WORKER": "",
		"USER_PROFILE_MENU": "", "USER_PROFILE_TOOLBAR": "",
	}
	for _, entity := range []string{"LEAD", "DEAL", "CONTACT", "COMPANY"} {
		for _, where := range []string{"DETAIL_TAB", "LIST_MENU", "DETAIL_TOOLBAR",
			"ACTIVITY_TIMELINE_MENU", "DETAIL_ACTIVITY", "LIST_TOOLBAR",
			"DOCUMENTGENERATOR_BUTTON", "ROBOT_DESIGNER_TOOLBAR"} {
			m["CRM_"+entity+"_"+where] = "crm"
		}
	}
	return m
}()

func placementBind(c *call) (outcome, *restError) {
	if !c.isAdmin() {
		return outcome{}, errAdminRequired
	}
	code := strings.ToUpper(strings.TrimSpace(str(c.param("PLACEMENT"))))
	if code == "" || code == "DEFAULT" {
		err := newError(400, "ERROR_ARGUMENT", "Wrong value")
		err.extra = map[string]any{"argument": "PLACEMENT"}
		return outcome{}, err
	}
	need, ok := knownPlacements[code]
	if !ok || !scopeAllows(c.p.appScope(), need) {
		return outcome{}, newError(400, "ERROR_PLACEMENT_NOT_FOUND", "Placement not found")
	}
	b := PlacementBinding{
		Placement:   code,
		Handler:     str(c.param("HANDLER")),
		Title:       str(c.param("TITLE")),
		Description: str(c.param("DESCRIPTION")),
		GroupName:   str(c.param("GROUP_NAME")),
	}
	if err := validHandler(b.Handler); err != nil {
		return outcome{}, err
	}
	if o, ok := c.param("OPTIONS").(*obj); ok {
		b.Options = plain(o)
	}
	if o, ok := c.param("LANG_ALL").(*obj); ok {
		b.LangAll = plain(o)
	}
	b.UserID, _ = intOf(c.param("USER_ID"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.placements {
		if x.Placement == b.Placement && x.Handler == b.Handler && x.UserID == b.UserID {
			return outcome{}, newError(400, "ERROR_CORE",
				"Unable to set placement handler: Handler already binded")
		}
	}
	p.placements = append(p.placements, b)
	return outcome{result: true}, nil
}

func placementUnbind(c *call) (outcome, *restError) {
	if !c.isAdmin() {
		return outcome{}, errAdminRequired
	}
	code := strings.ToUpper(strings.TrimSpace(str(c.param("PLACEMENT"))))
	if code == "" {
		err := newError(400, "ERROR_ARGUMENT", "Argument 'PLACEMENT' is null or empty")
		err.extra = map[string]any{"argument": "PLACEMENT"}
		return outcome{}, err
	}
	handler := str(c.param("HANDLER"))
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.placements[:0]
	count := 0
	for _, b := range p.placements {
		if b.Placement == code && (handler == "" || b.Handler == handler) {
			count++
			continue
		}
		kept = append(kept, b)
	}
	p.placements = kept
	return outcome{result: newObj().set("count", count)}, nil
}

func placementGet(c *call) (outcome, *restError) {
	p := c.p
	p.mu.Lock()
	defer p.mu.Unlock()
	rows := []any{}
	for _, b := range p.placements {
		rows = append(rows, newObj().set("placement", b.Placement).set("userId", b.UserID).
			set("handler", b.Handler).set("options", orEmpty(b.Options)).
			set("title", b.Title).set("description", b.Description).
			set("langAll", orEmpty(b.LangAll)))
	}
	return outcome{result: rows}, nil
}

// orEmpty renders a nil map as PHP's empty array.
func orEmpty(m map[string]any) any {
	if len(m) == 0 {
		return []any{}
	}
	return m
}

// placementList answers placement.list: the codes the app's scope allows.
func placementList(c *call) (outcome, *restError) {
	scope := c.p.appScope()
	codes := []string{}
	for code, need := range knownPlacements {
		if scopeAllows(scope, need) {
			codes = append(codes, code)
		}
	}
	sort.Strings(codes)
	return outcome{result: codes}, nil
}
