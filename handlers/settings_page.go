package handlers

import (
	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/assets"
)

// appTabs are the sections of the settings page, in order.
var appTabs = []string{"overview", "teams", "rules", "try", "log", "versions", "intake", "state"}

// tabView is one tab of the settings page.
type tabView struct{ ID, Title string }

// appView is the body of the settings page.
type appView struct {
	UserName string
	Admin    bool
	Tabs     []tabView
}

// showApp serves the DEFAULT placement: the settings page. The page itself
// carries no settings; its script reads them through the API with the session
// token the page hands it.
func (s *Settings) showApp(c *gin.Context) error {
	lang := assets.Lang(c.Query("LANG"))
	user, err := s.verifyFrame(c)
	if err != nil {
		return s.renderError(c, lang, err)
	}
	lang = assets.Lang(user.Lang)
	if err := s.checkReader(c.Request.Context(), user.MemberID, user.UserID, user.Admin); err != nil {
		return s.renderError(c, lang, err)
	}
	dict := s.cfg.Assets.Dict(lang)
	body := appView{UserName: user.Name, Admin: user.Admin}
	for _, id := range appTabs {
		body.Tabs = append(body.Tabs, tabView{ID: id, Title: dict.T("tab." + id)})
	}
	config := map[string]any{
		"token":      s.cfg.Sessions.Issue(*user),
		"api":        "/api",
		"lang":       lang,
		"locale":     locale(lang),
		"admin":      user.Admin,
		"portal_url": user.Origin,
		"i18n":       dict,
	}
	return s.render(c, 200, "app", s.view(lang, "app.js", config, body), user.Origin)
}

// locale is the browser locale for dates in lang.
func locale(lang string) string {
	if lang == "ru" {
		return "ru-RU"
	}
	return "en-GB"
}
