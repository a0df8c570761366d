package handlers

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/lifecycle"
	"github.com/leadrouter/leadrouter/oauth"
)

// Installer handles the install page's request (*lifecycle.Lifecycle).
type Installer interface {
	Install(ctx context.Context, query, form url.Values) (*lifecycle.InstallResult, error)
}

// Install serves /install, the page the portal opens in its frame for an
// administrator while LeadRouter is not installed. It verifies the request, stores
// the administrator's tokens, binds events and placements, and answers with a page
// that shows what was set up and calls installFinish through the frame SDK. When
// anything fails the page says so and does not call installFinish, so that the
// administrator can simply open the application again.
type Install struct {
	Lifecycle Installer
	Log       *slog.Logger
	// SDKURL is where the page loads Bitrix24's frame SDK (the UMD build that
	// defines B24Js).
	SDKURL string
}

// Register adds POST and GET /install.
func (h *Install) Register(r gin.IRoutes) {
	r.POST("/install", Handle(h.Log, h.serve))
	r.GET("/install", Handle(h.Log, h.serve))
	// The marketplace checks the install URL with HEAD and wants a 200.
	r.HEAD("/install", func(c *gin.Context) { c.Status(http.StatusOK) })
}

func (h *Install) serve(c *gin.Context) error {
	ctx := c.Request.Context()
	lang := oauth.Lang(c.Query("LANG"))
	if err := c.Request.ParseForm(); err != nil {
		return h.render(c, http.StatusBadRequest, installView{Lang: lang, Text: installTexts(lang),
			Error: installTexts(lang).BadRequest, RequestID: RequestID(ctx)}, "")
	}
	SetMember(c, c.Request.Form.Get("member_id"))
	res, err := h.Lifecycle.Install(ctx, c.Request.URL.Query(), c.Request.PostForm)
	if err != nil {
		return h.renderError(c, lang, err)
	}
	v := installView{
		Lang:      lang,
		Text:      installTexts(lang),
		Domain:    res.Portal.Domain,
		Finish:    res.Finish,
		SDKURL:    h.SDKURL,
		RequestID: RequestID(ctx),
	}
	for _, e := range res.Bound.Events {
		v.Events = append(v.Events, e.String())
	}
	for _, p := range res.Bound.Placements {
		v.Placements = append(v.Placements, p.String())
	}
	return h.render(c, http.StatusOK, v, res.Portal.Origin())
}

// renderError shows why the install failed. Refused requests get a 4xx and a
// sentence; anything else is logged and gets a 500 naming the request ID.
func (h *Install) renderError(c *gin.Context, lang string, err error) error {
	ctx := c.Request.Context()
	t := installTexts(lang)
	status, msg := http.StatusInternalServerError, t.Failed
	switch {
	case errors.Is(err, oauth.ErrBadFrame):
		status, msg = http.StatusBadRequest, t.BadRequest
	case errors.Is(err, lifecycle.ErrNotAdmin):
		status, msg = http.StatusForbidden, t.NotAdmin
	case errors.Is(err, oauth.ErrForbidden):
		status, msg = http.StatusForbidden, t.Forbidden
	}
	if status >= 500 {
		h.Log.ErrorContext(ctx, "install failed", append(requestAttrs(c), "error", err)...)
	} else {
		h.Log.WarnContext(ctx, "install refused", append(requestAttrs(c), "status", status,
			"error", err)...)
	}
	v := installView{Lang: lang, Text: t, Error: msg, RequestID: RequestID(ctx)}
	return h.render(c, status, v, "")
}

// render writes the page. The CSP allows only this page's own scripts (by
// nonce) and framing by the verified portal; an error page, whose portal may be
// unknown, may be framed by any page since it shows nothing of anyone's.
func (h *Install) render(c *gin.Context, status int, v installView, portalOrigin string) error {
	v.Nonce = newNonce()
	ancestors := FrameAncestors(portalOrigin)
	if v.Error != "" {
		ancestors = "frame-ancestors *"
	}
	hd := c.Writer.Header()
	hd.Del("X-Frame-Options")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+v.Nonce+
		"'; style-src 'nonce-"+v.Nonce+"'; base-uri 'none'; form-action 'none'; "+ancestors)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	c.Status(status)
	return installPage.Execute(c.Writer, v)
}

// installView is what the install page template reads.
type installView struct {
	Lang       string
	Text       installText
	Domain     string
	Events     []string
	Placements []string
	Finish     bool
	SDKURL     string
	Nonce      string
	Error      string
	RequestID  string
}

// installText holds the page's sentences in one language.
type installText struct {
	Title, Heading, SetUp, Events, Placements, Finishing, Done, FinishFailed string
	ErrorHeading, BadRequest, NotAdmin, Forbidden, Failed, RequestID         string
}

func installTexts(lang string) installText {
	if lang == "ru" {
		return installText{
			Title:      "Установка LeadRouter",
			Heading:    "Устанавливаем LeadRouter",
			SetUp:      "На портале настроено",
			Events:     "Обработчики событий",
			Placements: "Встройки",
			Finishing:  "Завершаем установку…",
			Done:       "LeadRouter установлен. Bitrix24 сейчас откроет настройки.",
			FinishFailed: "Bitrix24 не подтвердил установку. " +
				"Откройте LeadRouter из меню приложений ещё раз.",
			ErrorHeading: "Не удалось установить LeadRouter",
			BadRequest: "Запрос на установку от Bitrix24 неполный. " +
				"Откройте LeadRouter из меню приложений ещё раз.",
			NotAdmin:  "Установить LeadRouter может только администратор портала.",
			Forbidden: "Bitrix24 не подтвердил этот запрос на установку.",
			Failed: "LeadRouter не смог настроиться на портале. " +
				"Попробуйте ещё раз через минуту.",
			RequestID: "Номер запроса",
		}
	}
	return installText{
		Title:      "Installing LeadRouter",
		Heading:    "Installing LeadRouter",
		SetUp:      "Set up on",
		Events:     "Event handlers",
		Placements: "Placements",
		Finishing:  "Finishing the installation…",
		Done:       "LeadRouter is installed. Bitrix24 opens its settings now.",
		FinishFailed: "Bitrix24 did not confirm the installation. " +
			"Open LeadRouter from the applications menu again.",
		ErrorHeading: "LeadRouter could not be installed",
		BadRequest: "The install request from Bitrix24 is incomplete. " +
			"Open LeadRouter from the applications menu again.",
		NotAdmin:  "Only a portal administrator can install LeadRouter.",
		Forbidden: "Bitrix24 did not confirm this install request.",
		Failed:    "LeadRouter could not set itself up on the portal. Try again in a minute.",
		RequestID: "Request ID",
	}
}

// installPage is the install page. Its script finishes the installation through
// the frame SDK only when the server set everything up (Finish).
var installPage = template.Must(template.New("install").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Text.Title}}</title>
<style nonce="{{.Nonce}}">
body { margin: 0; padding: 24px; background: #f5f7f8; color: #333;
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 640px; background: #fff; border-radius: 12px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 16px; }
h2 { font-size: 15px; margin: 16px 0 4px; color: #525c69; }
ul { margin: 0; padding-left: 20px; }
.status { margin-top: 20px; font-weight: 600; }
.status[data-state="done"] { color: #1bce7b; }
.status[data-state="failed"], .error { color: #ff5752; }
.muted { color: #828b95; font-size: 12px; }
</style>
</head>
<body>
<main>
{{- if .Error}}
<h1>{{.Text.ErrorHeading}}</h1>
<p class="error" id="error">{{.Error}}</p>
<p class="muted">{{.Text.RequestID}}: {{.RequestID}}</p>
{{- else}}
<h1>{{.Text.Heading}}</h1>
<p>{{.Text.SetUp}} <strong>{{.Domain}}</strong>:</p>
<h2>{{.Text.Events}}</h2>
<ul id="events">{{range .Events}}<li>{{.}}</li>{{end}}</ul>
<h2>{{.Text.Placements}}</h2>
<ul id="placements">{{range .Placements}}<li>{{.}}</li>{{end}}</ul>
<p class="status" id="status" data-state="pending">{{.Text.Finishing}}</p>
<script nonce="{{.Nonce}}" src="{{.SDKURL}}"></script>
<script nonce="{{.Nonce}}">
(async function () {
  var status = document.getElementById("status");
  function show(state, text) { status.dataset.state = state; status.textContent = text; }
  try {
    // The SDK finds the portal through window.name and postMessage.
    var b24 = await window.B24Js.initializeB24Frame();
    if ({{.Finish}} && b24.isInstallMode) {
      await b24.installFinish();
    }
    show("done", {{.Text.Done}});
  } catch (e) {
    show("failed", {{.Text.FinishFailed}});
  }
})();
</script>
{{- end}}
</main>
</body>
</html>
`))
