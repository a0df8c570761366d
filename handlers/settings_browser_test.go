package handlers_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/handlers"
	"github.com/leadrouter/leadrouter/oauth"
	"github.com/leadrouter/leadrouter/routing"
)

// The browser tests open the pages inside the fake portal's frame in headless
// Chromium, with the official frame SDK from e2e/node_modules. They skip when
// Chromium or the SDK is missing, except under CI, where they must run.

// chromiumPath finds a Chromium binary.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab looking at a portal page.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string // directory for screenshots

	mu      sync.Mutex // guards dialogs and errors
	dialogs []string   // messages of alert/confirm dialogs the pages opened
	errors  []string   // uncaught script errors of the pages
}

// newBrowser starts Chromium for one test.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("Chromium is not installed; scripts/test.sh installs it")
		}
		t.Skip("Chromium is not installed")
	}
	if sdkFile() == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("the frame SDK is not installed; run npm ci in e2e/")
		}
		t.Skip("the frame SDK is not installed; run npm ci in e2e/")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, shots: screenshotDir(t)}
	b.watchDialogs()
	b.watchExceptions()
	return b
}

// watchExceptions records every uncaught script error of the pages, the portal's
// and the frame's alike: moderation rejects pages with script errors.
func (b *browser) watchExceptions() {
	exceptions := chromedp.Events(b.ctx, cdpruntime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			text := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				text += " " + ev.ExceptionDetails.Exception.Description
			}
			b.mu.Lock()
			b.errors = append(b.errors, text)
			b.mu.Unlock()
		}
	}()
}

func (b *browser) scriptErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// screenshotDir is where screenshots go: $LEADROUTER_ARTIFACTS/screenshots, or a
// temporary directory that outlives the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LEADROUTER_ARTIFACTS")
	if dir == "" {
		tmp, err := os.MkdirTemp("", "leadrouter-artifacts-")
		if err != nil {
			t.Fatal(err)
		}
		dir = tmp
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// watchDialogs records and dismisses every JavaScript dialog, so that a script
// injected through a field would be noticed and would not block the test.
func (b *browser) watchDialogs() {
	dialogs := chromedp.Events(b.ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			chromedp.Call(b.ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
}

func (b *browser) dialogMessages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.dialogs...)
}

// wait runs an action with a deadline, failing the test with what was awaited.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// open navigates the tab to a portal page.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
}

// frame returns the application's iframe in the portal page.
func (b *browser) frame() *chromedp.Node {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#app-frame")))
	if err != nil || len(nodes) == 0 {
		b.t.Fatalf("the portal page has no application frame: %v", err)
	}
	return nodes[0]
}

// evalIn evaluates expr inside the application's frame until it gives a truthy
// value, and returns that value. A frame that navigates meanwhile (the install
// page reloading into the app) is looked up again.
func evalIn[T any](b *browser, what, expr string) T {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(b.ctx, deadline)
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("#app-frame")))
		if err == nil && len(nodes) > 0 {
			var v T
			v, err = chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingInFrame(nodes[0]),
				chromedp.WithPollingInterval(50*time.Millisecond)))
			if err == nil {
				cancel()
				return v
			}
		}
		cancel()
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
	b.t.Fatalf("%s: %v", what, lastErr)
	panic("unreachable")
}

// waitIn waits until a CSS selector matches a visible element in the frame.
func (b *browser) waitIn(sel string) {
	b.t.Helper()
	evalIn[bool](b, "wait for "+sel, fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		return !!el && el.offsetParent !== null;
	})()`, sel))
}

// clickIn clicks an element in the frame with the mouse, once the frame has grown
// to show it (the page asks the portal for its height after every change).
func (b *browser) clickIn(sel string) {
	b.t.Helper()
	evalIn[bool](b, "wait to see "+sel, fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el || el.offsetParent === null) return false;
		const r = el.getBoundingClientRect();
		return r.bottom <= window.innerHeight && r.right <= window.innerWidth;
	})()`, sel))
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.FromNode(b.frame()), chromedp.NodeVisible))
}

// typeIn replaces the text of an input in the frame by typing.
func (b *browser) typeIn(sel, text string) {
	b.t.Helper()
	b.waitIn(sel)
	evalIn[bool](b, "select "+sel, fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		el.focus(); el.select(); return true; })()`, sel))
	b.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.FromNode(b.frame())))
}

// chooseIn picks an option of a select in the frame, as a person does.
func (b *browser) chooseIn(sel, value string) {
	b.t.Helper()
	b.waitIn(sel)
	evalIn[bool](b, "choose "+value+" in "+sel, fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		el.value = %q; el.dispatchEvent(new Event("change", {bubbles: true})); return el.value === %q; })()`,
		sel, value, value))
}

// textIn returns the text of the first element matching sel in the frame, once
// it contains want.
func (b *browser) textIn(sel, want string) string {
	b.t.Helper()
	return evalIn[string](b, fmt.Sprintf("text %q in %s", want, sel), fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		const text = el ? el.textContent : "";
		return text.includes(%q) ? text : "";
	})()`, sel, want))
}

// shot saves a full-page screenshot of the portal page.
func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	test := strings.NewReplacer("TestSettingsInBrowser/", "journey-", "TestSettings", "",
		"/", "-").Replace(b.t.Name())
	path := filepath.Join(b.shots, test+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("write screenshot: %v", err)
	}
}

// pickInPortal chooses users in the portal's own picker dialog.
func (b *browser) pickInPortal(ids ...int) {
	b.t.Helper()
	b.do("portal picker opens", chromedp.WaitVisible(chromedp.ID("portal-picker")))
	b.shot("user-picker")
	for _, id := range ids {
		sel := fmt.Sprintf(`#portal-picker-list [data-id="%d"] input`, id)
		b.do("pick user "+fmt.Sprint(id), chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	}
	b.do("confirm the picker", chromedp.Click(chromedp.ID("portal-picker-done"), chromedp.NodeVisible))
}

// portalEval evaluates expr in the portal page (the frame's parent).
func portalEval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// texts of the journey in each language.
type journeyTexts struct {
	saved, assigned, readonly string
}

func TestSettingsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser journey is not short")
	}
	for _, tc := range []struct {
		lang  string
		texts journeyTexts
	}{
		{"en", journeyTexts{saved: "Saved as version", assigned: "Assigned to"}},
		{"ru", journeyTexts{saved: "Сохранено, версия", assigned: "Назначен"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			t.Parallel()
			journey(t, tc.lang, tc.texts)
		})
	}
}

// journey installs the app from the portal, builds a team with the portal's user
// picker, adds a rule, saves (first with a mistake), sends leads and sees them in
// the chart and the log, tries settings, rolls back a version and opens the lead
// tab — all in the page, inside the portal's frame, with the real frame SDK.
func journey(t *testing.T, lang string, texts journeyTexts) {
	s := startStack(t)
	b := newBrowser(t)
	p := s.newPortal(lang)

	// Install: the portal opens the install page for the administrator; it binds
	// and calls installFinish through the SDK; the portal then opens the app.
	b.open(p.FrameURL(anna.ID))
	evalIn[bool](b, "settings page ready after install",
		`document.body.dataset.ready === "true" && document.body.dataset.frame === "connected"`)
	s.waitActive(p)
	if !p.Installed() {
		t.Fatalf("the portal does not count the app as installed")
	}
	title := portalEval[string](b, "portal title set by the app",
		`document.title === "LeadRouter" ? document.title : ""`)
	if title != "LeadRouter" {
		t.Errorf("portal title = %q", title)
	}
	height := portalEval[string](b, "frame resized to the page",
		`(() => {
			const h = document.getElementById("app-frame").style.height;
			return h && h !== "600px" ? h : "";
		})()`)
	t.Logf("frame height after fitWindow: %s", height)
	b.shot("overview-empty")

	// Teams: a team of Boris and Clara, chosen in the portal's user picker.
	b.clickIn("#lr-tab-teams")
	b.clickIn("#lr-add-team")
	b.clickIn("[data-add-people]")
	b.pickInPortal(boris.ID, clara.ID)
	b.waitIn(`tr[data-user="3"]`)
	b.textIn(`tr[data-user="2"] .lr-member-name`, "Boris Petrov")
	b.typeIn(`[data-path="teams[0].name"]`, "Inbound")
	b.typeIn(`[data-path="teams[0].members[1].weight"]`, "500")
	b.clickIn(`[data-path="teams[0].deadline"]`)
	b.typeIn(`[data-path="teams[0].deadline.minutes"]`, "15")
	b.shot("teams")

	// Rules: web leads go to the team.
	b.clickIn("#lr-tab-rules")
	b.clickIn("#lr-add-rule")
	b.typeIn(`[data-path="rules[0].name"]`, "Web")
	b.chooseIn(`[data-path="rules[0].conditions[0].value"]`, "WEB")
	b.chooseIn(`[data-path="default"]`, "team:"+teamID(b))
	// Leads moved back to the first status of the portal (NEW) are routed again.
	b.clickIn(`div[data-path="reroute.statuses"] label:first-child input`)

	// A second rule, dragged above the first: the order is the order of checking.
	b.clickIn("#lr-add-rule")
	b.typeIn(`[data-path="rules[1].name"]`, "Big deals")
	b.chooseIn(`[data-path="rules[1].conditions[0].field"]`, "OPPORTUNITY")
	b.chooseIn(`[data-path="rules[1].conditions[0].op"]`, "gte")
	b.typeIn(`[data-path="rules[1].conditions[0].value"]`, "100000")
	b.waitIn(`.lr-rule[data-index="1"] .lr-handle`)
	b.do("drag the second rule above the first", chromedp.DragAndDrop(
		chromedp.CSS(`.lr-rule[data-index="1"] .lr-handle`), chromedp.CSS(`.lr-rule[data-index="0"]`),
		chromedp.FromNode(b.frame())))
	first := evalIn[string](b, "rule order after the drag",
		`document.querySelector('[data-path="rules[0].name"]').value`)
	if first != "Big deals" {
		t.Errorf("first rule after dragging = %q, want Big deals", first)
	}
	b.shot("rules")

	// Save with a weight out of range: the field is marked, nothing is lost.
	b.clickIn("#lr-save")
	b.waitIn(`[data-error-for="teams[0].members[1].weight"]`)
	evalIn[bool](b, "weight field marked", `document.querySelector(
		'[data-path="teams[0].members[1].weight"]').classList.contains("lr-invalid")`)
	b.shot("validation")
	b.typeIn(`[data-path="teams[0].members[1].weight"]`, "2")
	b.clickIn("#lr-save")
	b.textIn("#lr-save-status", texts.saved)

	// Leads arrive; the pipeline routes them; the chart and the log show them.
	var leads []int
	for i := range 4 {
		leads = append(leads, p.AddLead(anna.ID, map[string]any{"TITLE": fmt.Sprintf("Site request %d", i+1),
			"SOURCE_ID": "WEB", "ASSIGNED_BY_ID": anna.ID}))
	}
	waitFor(t, "leads routed", func() bool {
		for _, id := range leads {
			lead, _ := p.Lead(id)
			if o := fmt.Sprint(lead["ASSIGNED_BY_ID"]); o != "2" && o != "3" {
				return false
			}
		}
		return true
	})
	token := s.session(p, anna.ID)
	var saved struct{ Settings routing.Settings }
	s.call(token, "GET", "/api/settings", nil, &saved)
	if dl := saved.Settings.Teams[0].Deadline; dl == nil || dl.Minutes != 15 || dl.MaxPasses != 0 {
		t.Errorf("saved deadline = %+v, want 15 minutes and no limit of passes", dl)
	}
	if again := saved.Settings.Reroute.Statuses; len(again) != 1 || again[0] != "NEW" {
		t.Errorf("saved statuses that route a lead again = %v, want [NEW]", again)
	}
	waitFor(t, "leads counted", func() bool {
		var ov struct{ Totals struct{ Today int } }
		s.call(token, "GET", "/api/overview", nil, &ov)
		return ov.Totals.Today == len(leads)
	})
	b.clickIn("#lr-tab-overview")
	b.waitIn(`.lr-chart-row[data-user="2"]`)
	b.waitIn(`.lr-chart-row[data-user="3"]`)
	b.textIn(`.lr-chart-row[data-user="3"] .lr-chart-count`, "/")
	b.waitIn("#lr-people-skips")
	b.shot("overview")

	b.clickIn("#lr-tab-log")
	b.waitIn(fmt.Sprintf(`tr[data-lead="%d"]`, leads[0]))
	rows := evalIn[int](b, "log rows", `document.querySelectorAll("#lr-log-results tr[data-lead]").length`)
	if rows < len(leads) {
		t.Errorf("log shows %d rows, want %d", rows, len(leads))
	}
	b.typeIn("#lr-log-query", "Clara\n")
	evalIn[bool](b, "log filtered to Clara", `(() => {
		const rows = [...document.querySelectorAll("#lr-log-results tr[data-lead]")];
		return rows.length > 0 && rows.every(r => r.textContent.includes("Clara"));
	})()`)
	b.shot("log")

	// Try it: a typed-in lead through the saved settings.
	b.clickIn("#lr-tab-try")
	b.typeIn(`[data-try="TITLE"]`, "Trial lead")
	b.chooseIn(`[data-try="SOURCE_ID"]`, "WEB")
	b.clickIn("#lr-try-run")
	b.waitIn("#lr-try-report")
	b.shot("try")

	// A second version: Boris weighs more. Then roll back to the first.
	b.clickIn("#lr-tab-teams")
	b.typeIn(`[data-path="teams[0].members[0].weight"]`, "3")
	b.clickIn("#lr-save")
	b.textIn("#lr-save-status", texts.saved+" 2")
	b.clickIn("#lr-tab-versions")
	b.clickIn(`[data-diff="2"]`)
	b.waitIn(".lr-diff-list li")
	b.textIn(".lr-diff-list", "Boris Petrov")
	b.shot("versions")
	b.clickIn(`[data-rollback="1"]`)
	b.textIn("#lr-save-status", texts.saved+" 3")
	b.waitIn(`tr[data-version="3"]`)
	b.shot("rolled-back")

	// Another administrator saves meanwhile: the page's save is refused with a
	// warning and keeps its changes; saving again replaces the other version.
	other := s.session(p, anna.ID)
	if code := s.call(other, "PUT", "/api/settings", map[string]any{"settings": salesTeam(),
		"base_version": 3}, nil); code != 200 {
		t.Fatalf("save from another session = %d, want 200", code)
	}
	b.clickIn("#lr-tab-teams")
	b.typeIn(`[data-path="teams[0].members[0].weight"]`, "5")
	b.clickIn("#lr-save")
	b.waitIn("#lr-alerts .lr-notice-warn")
	b.clickIn("#lr-save")
	b.textIn("#lr-save-status", texts.saved+" 5")

	b.clickIn("#lr-tab-intake")
	b.typeIn("#lr-intake-name", "Landing page")
	b.clickIn(`#lr-section-intake button[type="submit"]`)
	b.waitIn(`#lr-intake tr[data-source] .lr-secret`)
	// The address lets posts name their responsible person, at five posts a minute;
	// a rate of zero is refused next to its field first.
	b.clickIn(`#lr-intake input[data-option="allow_responsible"]`)
	b.typeIn(`#lr-intake input[data-option="rate_per_minute"]`, "0")
	b.clickIn(`#lr-intake [data-save-options]`)
	b.textIn(`#lr-intake [data-error-for="rate_per_minute"]`, "10000")
	b.typeIn(`#lr-intake input[data-option="rate_per_minute"]`, "5")
	b.clickIn(`#lr-intake [data-save-options]`)
	b.textIn("#lr-alerts .lr-notice-ok", "Landing page")
	sources, err := s.intake.List(context.Background(), p.MemberID())
	if err != nil || len(sources) != 1 || !sources[0].Options.AllowResponsible ||
		sources[0].Options.RatePerMinute != 5 {
		t.Errorf("intake sources after saving options = %+v, %v; want a rate of 5 "+
			"and the responsible allowed", sources, err)
	}
	b.shot("intake")

	b.clickIn("#lr-tab-state")
	b.waitIn("#lr-access")
	b.shot("state")

	// No scroll bars at 1280 px: the page fits the frame's width, and the frame
	// takes the page's height.
	evalIn[bool](b, "no scroll bars in the frame", `(() => {
		const d = document.documentElement;
		return d.scrollWidth <= d.clientWidth && d.scrollHeight <= d.clientHeight + 1;
	})()`)
	b.clickIn("#lr-tab-overview")
	shrunk := portalEval[string](b, "frame shrinks to a shorter tab", `(() => {
		const f = document.getElementById("app-frame");
		return parseInt(f.style.height, 10) < 1200 ? f.style.height : "";
	})()`)
	t.Logf("frame height on the overview: %s", shrunk)

	// The lead tab in the lead's card.
	b.open(p.LeadFrameURL(boris.ID, leads[0]))
	b.textIn("#lr-lead-tab", texts.assigned)
	b.textIn("#lr-lead-tab", "Web")
	b.shot("lead-tab")

	// A reader the administrator allowed sees the settings but cannot change them.
	allow := map[string]any{"readers": []int{boris.ID}}
	if code := s.call(token, "PUT", "/api/access", allow, nil); code != 200 {
		t.Fatalf("allow a reader = %d", code)
	}
	b.open(p.FrameURL(boris.ID))
	b.waitIn("#lr-readonly")
	b.clickIn("#lr-tab-teams")
	evalIn[bool](b, "reader sees the team, read-only", `(() => {
		const name = document.querySelector('[data-path="teams[0].name"]');
		return !!name && name.disabled && !document.getElementById("lr-save") &&
			!document.getElementById("lr-add-team");
	})()`)
	b.clickIn("#lr-tab-intake")
	evalIn[bool](b, "reader sees the intake options, read-only", `(() => {
		const allow = document.querySelector('#lr-intake input[data-option="allow_responsible"]');
		return !!allow && allow.checked && allow.disabled &&
			!document.querySelector("[data-save-options]");
	})()`)
	b.shot("reader")

	if d := b.dialogMessages(); len(d) > 0 {
		t.Errorf("pages opened dialogs: %q", d)
	}
	if e := b.scriptErrors(); len(e) > 0 {
		t.Errorf("pages threw script errors: %q", e)
	}
}

// teamID reads the ID of the first team from the page's draft.
func teamID(b *browser) string {
	return evalIn[string](b, "team id", `document.querySelector("[data-team]").getAttribute("data-team")`)
}

// countInjected counts the elements the test's markup would make if a page parsed
// it as HTML.
const countInjected = `String(document.querySelectorAll(
	"img[src=x], svg, script:not([src]), b[onmouseover]").length)`

// TestSettingsEscapeInBrowser puts markup into every text the pages show — team,
// rule and condition texts, a person's name from the portal, an intake source's
// name — and checks the browser shows it as text and runs none of it.
func TestSettingsEscapeInBrowser(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	b := newBrowser(t)
	p := s.newPortal("en")
	evil := p.AddUser(bitrixtest.User{ID: 9, Name: `<img src=x onerror=alert("user")>`, LastName: "Eve"})
	s.install(p)
	token := s.session(p, anna.ID)

	const teamName = `<img src=x onerror=alert("team")>`
	const ruleName = `"><script>alert("rule")</script>`
	const value = `</script><svg onload=alert("value")>`
	settings := salesTeam()
	settings.Teams[0].Name = teamName
	settings.Teams[0].Members = append(settings.Teams[0].Members, routingMember(evil.ID))
	settings.Rules[0].Name = ruleName
	settings.Rules[0].Conditions[0].Field = "TITLE"
	settings.Rules[0].Conditions[0].Op = "contains"
	settings.Rules[0].Conditions[0].Value = value
	if code := s.call(token, "PUT", "/api/settings", map[string]any{"settings": settings}, nil); code != 200 {
		t.Fatalf("save settings with markup = %d", code)
	}
	var src struct{ ID, URL, Secret string }
	s.call(token, "POST", "/api/intake", map[string]any{"name": `<b onmouseover=alert("intake")>x</b>`}, &src)
	lead := p.AddLead(anna.ID, map[string]any{"TITLE": value, "SOURCE_ID": "WEB", "ASSIGNED_BY_ID": anna.ID})
	waitFor(t, "lead routed", func() bool {
		l, _ := p.Lead(lead)
		return fmt.Sprint(l["ASSIGNED_BY_ID"]) != fmt.Sprint(anna.ID)
	})
	// A post to that address, refused by the portal, is listed with the address's name.
	p.SetAccessDenied(true)
	intakePost(t, src.URL, "application/json", []byte(`{"name":"Eve"}`),
		map[string]string{handlers.IntakeSecretHeader: src.Secret})
	waitFor(t, "intake dead letter", func() bool {
		var dead struct{ Total int }
		s.call(token, "GET", "/api/intake/dead-letters", nil, &dead)
		return dead.Total == 1
	})
	p.SetAccessDenied(false)

	b.open(p.FrameURL(anna.ID))
	evalIn[bool](b, "page ready", `document.body.getAttribute("data-ready") === "true"`)
	b.clickIn("#lr-tab-teams")
	got := evalIn[string](b, "team name field", `document.querySelector('[data-path="teams[0].name"]').value`)
	if got != teamName {
		t.Errorf("team name field = %q, want %q", got, teamName)
	}
	b.textIn(`tr[data-user="9"] .lr-member-name`, `<img src=x onerror=alert("user")> Eve`)
	b.clickIn("#lr-tab-rules")
	got = evalIn[string](b, "rule name", `document.querySelector('[data-path="rules[0].name"]').value`)
	if got != ruleName {
		t.Errorf("rule name field = %q, want %q", got, ruleName)
	}
	got = evalIn[string](b, "condition value",
		`document.querySelector('[data-path="rules[0].conditions[0].value"]').value`)
	if got != value {
		t.Errorf("condition field = %q, want %q", got, value)
	}
	b.clickIn("#lr-tab-log")
	b.textIn("#lr-log-results", ruleName)
	b.clickIn("#lr-tab-intake")
	b.textIn("#lr-intake", `<b onmouseover=alert("intake")>x</b>`)
	b.textIn("#lr-intake-dead", `<b onmouseover=alert("intake")>x</b>`)
	b.clickIn("#lr-tab-versions")
	b.clickIn(`[data-diff="1"]`)
	b.textIn(".lr-diff-list", teamName)
	injected := evalIn[string](b, "count injected elements", countInjected)
	if injected != "0" {
		t.Errorf("the page holds %s elements made from typed markup", injected)
	}
	b.shot("escaped")

	b.open(p.LeadFrameURL(anna.ID, lead))
	b.textIn("#lr-lead-tab", ruleName)
	injected = evalIn[string](b, "count injected elements in the lead tab", countInjected)
	if injected != "0" {
		t.Errorf("the lead tab holds %s elements made from typed markup", injected)
	}
	time.Sleep(200 * time.Millisecond) // let any injected handler fire before counting dialogs
	if d := b.dialogMessages(); len(d) > 0 {
		t.Errorf("markup in fields ran as script: dialogs %q", d)
	}
}

func routingMember(id int) routing.Member { return routing.Member{UserID: int64(id), Weight: 1} }

// TestPortalFrameCommands drives the frame SDK's other commands against the
// emulated portal from inside the settings page: a token refresh, the CRM picker,
// the placement's init data, and options. Its page sessions last a second, so the
// page also renews its session, with a token refresh of its own, and goes on.
func TestPortalFrameCommands(t *testing.T) {
	t.Parallel()
	s := startStack(t, func(c *oauth.Config) { c.SessionTTL = time.Second })
	b := newBrowser(t)
	p := s.newPortal("en")
	s.install(p)
	lead := p.AddLead(anna.ID, map[string]any{"TITLE": "Picked lead", "ASSIGNED_BY_ID": anna.ID})

	b.open(p.FrameURL(anna.ID))
	evalIn[bool](b, "page ready", `document.body.dataset.frame === "connected"`)
	evalIn[bool](b, "start the commands", `(() => {
		window.portalCheck = {};
		B24Js.initializeB24Frame().then(async (b24) => {
			const before = b24.auth.getAuthData().access_token;
			const after = await b24.auth.refreshAuth();
			window.portalCheck.refreshed = !!after.access_token && after.access_token !== before;
			window.portalCheck.placement = b24.placement.placement;
			window.portalCheck.admin = b24.auth.isAdmin;
			window.portalCheck.member = b24.auth.getAuthData().member_id;
			const picked = await b24.dialog.selectCRM({ entityType: ["lead"] });
			window.portalCheck.lead = picked.lead && picked.lead[0] && picked.lead[0].id;
		}).catch((e) => { window.portalCheck.error = String(e); });
		return true;
	})()`)
	b.do("CRM picker opens", chromedp.WaitVisible(chromedp.ID("portal-picker")))
	b.do("pick the lead", chromedp.Click(chromedp.CSS(
		fmt.Sprintf(`#portal-picker-list [data-id="L_%d"] input`, lead)), chromedp.NodeVisible))
	b.do("confirm", chromedp.Click(chromedp.ID("portal-picker-done"), chromedp.NodeVisible))
	got := evalIn[string](b, "commands answered", `(() => {
		const c = window.portalCheck;
		return c.error || (c.lead ? JSON.stringify(c) : "");
	})()`)
	want := fmt.Sprintf(`{"refreshed":true,"placement":"DEFAULT","admin":true,"member":%q,"lead":"L_%d"}`,
		p.MemberID(), lead)
	if got != want {
		t.Errorf("frame commands gave %s, want %s", got, want)
	}

	time.Sleep(time.Second) // the page's session runs out
	b.clickIn("#lr-tab-log")
	evalIn[bool](b, "session renewed", `Number(document.body.dataset.sessionRenewed || 0) >= 1`)
	b.waitIn("#lr-log-results table, #lr-log-results .lr-hint")
	if warning := evalIn[string](b, "alerts read", `(() => {
		const el = document.getElementById("lr-alerts");
		return el ? "[" + el.textContent + "]" : "";
	})()`); warning != "[]" {
		t.Errorf("after the session ran out the page shows %s, want no alert", warning)
	}
}
