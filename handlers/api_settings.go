package handlers

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/leadrouter/leadrouter/assets"
	"github.com/leadrouter/leadrouter/routing"
)

// settingsResponse is what GET /api/settings answers.
type settingsResponse struct {
	Settings *routing.Settings `json:"settings"`
	Version  int               `json:"version"`
	People   []personView      `json:"people"`
}

// personView is a portal user as the page names them.
type personView struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

func (s *Settings) getSettings(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	settings, version, err := s.cfg.Engine.Settings(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	people, _ := s.people(ctx, sess.MemberID)
	return jsonOK(c, settingsResponse{Settings: settings, Version: version, People: people})
}

// saveRequest is the body of PUT /api/settings. BaseVersion is the version the
// page started from; a save over a newer version is refused, so two
// administrators never silently overwrite each other.
type saveRequest struct {
	Settings    *routing.Settings `json:"settings"`
	BaseVersion int               `json:"base_version"`
}

func (s *Settings) putSettings(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	var req saveRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Settings == nil {
		return Errorf(http.StatusBadRequest, "no_settings", "The request carries no settings.")
	}
	version, err := s.cfg.Engine.SaveOver(ctx, sess.MemberID, req.Settings, sess.UserID,
		req.BaseVersion)
	if errors.Is(err, routing.ErrConflict) {
		return Errorf(http.StatusConflict, "conflict",
			"Somebody saved other settings meanwhile; reload to see them.")
	}
	if err != nil {
		return s.settingsError(err, sess.Lang)
	}
	s.log.InfoContext(ctx, "settings saved", "member_id", sess.MemberID,
		"user_id", sess.UserID, "version", version)
	return jsonOK(c, gin.H{"version": version})
}

// settingsError turns routing's validation error into a 422 that names each field
// by its path, so the page can mark it.
func (s *Settings) settingsError(err error, lang string) error {
	var ve *routing.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	dict := s.cfg.Assets.Dict(lang)
	fields := make(map[string]string, len(ve.Fields))
	for path, msg := range ve.Fields {
		fields[path] = fieldMessage(dict, path, msg)
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_settings",
		Message: dict.T("save.failed"), Fields: fields}
}

// fieldMessage returns the page language's message for a field routing refused:
// a translation keyed by the field's name ("invalid.weight") where the language
// has one, routing's own English sentence otherwise.
func fieldMessage(dict assets.Dict, path, msg string) string {
	last := path[strings.LastIndex(path, ".")+1:]
	if i := strings.IndexByte(last, '['); i >= 0 {
		last = last[:i]
	}
	if text, ok := dict["invalid."+last]; ok {
		return text
	}
	return msg
}

// versionView is one saved version in the list.
type versionView struct {
	routing.VersionInfo
	AuthorName string `json:"author_name"`
	Current    bool   `json:"current"`
}

func (s *Settings) getVersions(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	versions, err := s.cfg.Engine.Versions(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	_, current, err := s.cfg.Engine.Settings(ctx, sess.MemberID)
	if err != nil {
		return err
	}
	names := peopleNames(s.people(ctx, sess.MemberID))
	out := make([]versionView, 0, len(versions))
	for _, v := range versions {
		out = append(out, versionView{VersionInfo: v, AuthorName: names[v.Author],
			Current: v.Version == current})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return jsonOK(c, out)
}

// changeView is one readable difference between two versions.
type changeView struct {
	Path   string `json:"path"`
	Label  string `json:"label"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// getVersion answers a version with what it changed against the one before it.
func (s *Settings) getVersion(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	v, err := pathInt(c, "version")
	if err != nil {
		return err
	}
	after, err := s.cfg.Engine.Version(ctx, sess.MemberID, v)
	if errors.Is(err, routing.ErrNoVersion) {
		return Errorf(http.StatusNotFound, "no_version", "There is no such version.")
	}
	if err != nil {
		return err
	}
	before := &routing.Settings{}
	if v > 1 {
		// The oldest kept version is shown against empty settings.
		prev, err := s.cfg.Engine.Version(ctx, sess.MemberID, v-1)
		switch {
		case err == nil:
			before = prev
		case !errors.Is(err, routing.ErrNoVersion):
			return err
		}
	}
	names := peopleNames(s.people(ctx, sess.MemberID))
	l := labeler{dict: s.cfg.Assets.Dict(sess.Lang), before: before, after: after, names: names}
	changes := []changeView{}
	for _, ch := range expandChanges(routing.DiffSettings(before, after)) {
		changes = append(changes, changeView{Path: ch.Path, Label: l.label(ch.Path),
			Before: l.value(ch.Path, ch.Old), After: l.value(ch.Path, ch.New)})
	}
	return jsonOK(c, gin.H{"version": v, "against": v - 1, "settings": after, "changes": changes})
}

func (s *Settings) postRollback(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	v, err := pathInt(c, "version")
	if err != nil {
		return err
	}
	version, err := s.cfg.Engine.Rollback(ctx, sess.MemberID, v, sess.UserID)
	if errors.Is(err, routing.ErrNoVersion) {
		return Errorf(http.StatusNotFound, "no_version", "There is no such version.")
	}
	if err != nil {
		return s.settingsError(err, sess.Lang)
	}
	s.log.InfoContext(ctx, "settings rolled back", "member_id", sess.MemberID,
		"user_id", sess.UserID, "to_version", v, "version", version)
	return jsonOK(c, gin.H{"version": version})
}

// labeler writes a settings path in words: `Team "Sales" › Anna Smith › Weight`.
type labeler struct {
	dict          assets.Dict
	before, after *routing.Settings
	names         map[int64]string
}

// fieldKeys name the last segment of a path with a text of the page.
var fieldKeys = map[string]string{
	"name": "teams.name", "strategy": "teams.strategy", "fallback": "teams.fallback",
	"require_clock_in": "teams.require_clock_in", "break_counts": "teams.break_counts",
	"schedule": "teams.has_schedule", "weight": "members.weight", "daily_cap": "members.daily_cap",
	"open_cap": "members.open_cap", "paused": "members.paused", "time_zone": "members.time_zone",
	"from": "schedule.from", "to": "schedule.to", "target": "rules.target", "any": "rules.match",
	"disabled": "rules.disabled", "mode": "scope.mode", "keep_manual": "scope.keep_manual",
	"enabled": "scope.existing_client", "conditions": "rules.field", "members": "members.person",
	"user_id": "members.person", "kind": "target.label", "team": "diff.team_label",
	"user": "members.person", "field": "rules.field", "op": "rules.op", "value": "rules.value",
	"values": "rules.value", "sources": "scope.sources", "users": "scope.pick_users",
	"days": "schedule.days", "deadline": "teams.deadline", "minutes": "teams.deadline_minutes",
	"max_passes": "teams.deadline_max_passes",
}

func (l labeler) label(path string) string {
	var parts []string
	for _, seg := range strings.Split(path, ".") {
		name, index, hasIndex := splitIndex(seg)
		switch {
		case name == "teams" && hasIndex:
			parts = append(parts, fill(l.dict.T("diff.team"), "name", l.teamName(index)))
		case name == "rules" && hasIndex:
			parts = append(parts, fill(l.dict.T("diff.rule"), "name", l.ruleName(index)))
		case name == "conditions" && hasIndex:
			parts = append(parts, fill(l.dict.T("diff.condition"), "n", strconv.Itoa(index+1)))
		case name == "members" && hasIndex:
			parts = append(parts, l.memberName(path, index))
		case name == "scope" || name == "default" || name == "existing_client":
			parts = append(parts, l.dict.T("diff."+name))
		case fieldKeys[name] != "":
			parts = append(parts, l.dict.T(fieldKeys[name]))
		default:
			parts = append(parts, seg)
		}
	}
	return strings.Join(parts, " › ")
}

// value shows a JSON value from a diff plainly: strings without quotes, people by
// name.
func (l labeler) value(path, raw string) string {
	var s string
	if json.Unmarshal([]byte(raw), &s) != nil {
		s = ""
	}
	switch {
	case strings.HasSuffix(path, ".strategy"):
		return l.dict.T("strategy." + s)
	case strings.HasSuffix(path, ".op"):
		return l.dict.T("op." + s)
	case strings.HasSuffix(path, ".kind"):
		return l.dict.T("target.kind_" + s)
	case strings.HasSuffix(path, ".team") && s != "":
		return l.teamByID(s)
	}
	if strings.HasSuffix(path, "user_id") || strings.HasSuffix(path, ".user") {
		if id, err := strconv.ParseInt(raw, 10, 64); err == nil && l.names[id] != "" {
			return l.names[id]
		}
	}
	if s != "" || raw == `""` {
		return s
	}
	return raw
}

// teamByID names a team by its ID, from the newer settings first.
func (l labeler) teamByID(id string) string {
	for _, s := range []*routing.Settings{l.after, l.before} {
		for _, t := range s.Teams {
			if t.ID == id {
				return t.Name
			}
		}
	}
	return id
}

// expandChanges splits a change that adds or removes a whole object (a new team,
// a removed rule) into one change per field, so that each reads as a line, and
// leaves out identifiers, which mean nothing to people.
func expandChanges(in []routing.Change) []routing.Change {
	var out []routing.Change
	for _, ch := range in {
		if !compound(ch.Old) && !compound(ch.New) {
			out = append(out, ch)
			continue
		}
		old, new := leaves(ch.Path, ch.Old), leaves(ch.Path, ch.New)
		paths := map[string]bool{}
		for p := range old {
			paths[p] = true
		}
		for p := range new {
			paths[p] = true
		}
		sorted := make([]string, 0, len(paths))
		for p := range paths {
			sorted = append(sorted, p)
		}
		sort.Strings(sorted)
		for _, p := range sorted {
			if old[p] != new[p] && !strings.HasSuffix(p, ".id") {
				out = append(out, routing.Change{Path: p, Old: old[p], New: new[p]})
			}
		}
	}
	return out
}

// compound reports whether a rendered value is a JSON object or list.
func compound(raw string) bool {
	return strings.HasPrefix(raw, "{") || strings.HasPrefix(raw, "[")
}

// leaves flattens a rendered JSON value into its scalar fields by path.
func leaves(path, raw string) map[string]string {
	out := map[string]string{}
	if raw == "" {
		return out
	}
	var v any
	if json.Unmarshal([]byte(raw), &v) != nil {
		out[path] = raw
		return out
	}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(p+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(p+"["+strconv.Itoa(i)+"]", e)
			}
		case nil:
		default:
			b, _ := json.Marshal(x)
			out[p] = string(b)
		}
	}
	walk(path, v)
	return out
}

func (l labeler) teamName(i int) string {
	for _, s := range []*routing.Settings{l.after, l.before} {
		if s != nil && i < len(s.Teams) {
			return s.Teams[i].Name
		}
	}
	return "#" + strconv.Itoa(i+1)
}

func (l labeler) ruleName(i int) string {
	for _, s := range []*routing.Settings{l.after, l.before} {
		if s != nil && i < len(s.Rules) {
			return s.Rules[i].Name
		}
	}
	return "#" + strconv.Itoa(i+1)
}

// memberName names the j-th member of the team the path is in.
func (l labeler) memberName(path string, j int) string {
	_, ti, ok := splitIndex(strings.Split(path, ".")[0])
	if !ok {
		return "#" + strconv.Itoa(j+1)
	}
	for _, s := range []*routing.Settings{l.after, l.before} {
		if s != nil && ti < len(s.Teams) && j < len(s.Teams[ti].Members) {
			id := s.Teams[ti].Members[j].UserID
			if n := l.names[id]; n != "" {
				return n
			}
			return "#" + strconv.FormatInt(id, 10)
		}
	}
	return "#" + strconv.Itoa(j+1)
}

// splitIndex splits "teams[2]" into "teams" and 2.
func splitIndex(seg string) (string, int, bool) {
	name, rest, ok := strings.Cut(seg, "[")
	if !ok {
		return seg, 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	return name, n, err == nil
}

// fill replaces {key} in a text.
func fill(text, key, value string) string {
	return strings.ReplaceAll(text, "{"+key+"}", value)
}

// accessRequest is the body of PUT /api/access.
type accessRequest struct {
	Readers []int64 `json:"readers"`
}

func (s *Settings) putAccess(c *gin.Context) error {
	sess := session(c)
	ctx := c.Request.Context()
	var req accessRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if len(req.Readers) > 500 {
		return Errorf(http.StatusBadRequest, "too_many", "Choose at most 500 people.")
	}
	key := readersKey(sess.MemberID)
	pipe := s.cfg.Redis.TxPipeline()
	pipe.Del(ctx, key)
	for _, id := range req.Readers {
		if id <= 0 {
			return Errorf(http.StatusBadRequest, "bad_user", "A user ID must be a positive number.")
		}
		pipe.SAdd(ctx, key, strconv.FormatInt(id, 10))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "settings readers changed", "member_id", sess.MemberID,
		"user_id", sess.UserID, "readers", len(req.Readers))
	return jsonOK(c, gin.H{"readers": req.Readers})
}

// jsonOK answers 200 with v as JSON.
func jsonOK(c *gin.Context, v any) error {
	c.JSON(http.StatusOK, v)
	return nil
}

// now returns the configured time.
func (s *Settings) now() time.Time { return s.cfg.Now() }
