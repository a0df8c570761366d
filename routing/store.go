package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// ErrNoVersion is returned for a settings version that was never saved.
var ErrNoVersion = errors.New("no such settings version")

// VersionInfo describes one saved settings version.
type VersionInfo struct {
	Version int       `json:"version"`
	Author  int64     `json:"author"`
	SavedAt time.Time `json:"saved_at"`
	// RollbackOf is the version this one restored, 0 for an ordinary save.
	RollbackOf int `json:"rollback_of,omitempty"`
}

// savedVersion is how a version is stored: the settings with who saved them when.
type savedVersion struct {
	Author     int64     `json:"author"`
	SavedAt    time.Time `json:"saved_at"`
	RollbackOf int       `json:"rollback_of,omitempty"`
	Settings   *Settings `json:"settings"`
}

// saveScript stores a new settings version.
//
// KEYS[1]  routing settings hash (keyspace.RoutingSettings)
// ARGV[1]  the version record as JSON (type savedVersion)
//
// Returns the new version number: "head" counted up and the record stored under
// "v<head>".
var saveScript = redis.NewScript(`
local v = redis.call('HINCRBY', KEYS[1], 'head', 1)
redis.call('HSET', KEYS[1], 'v' .. v, ARGV[1])
return v
`)

// currentScript reads the current settings version.
//
// KEYS[1]  routing settings hash (keyspace.RoutingSettings)
//
// Returns {head, record} or nil when the portal never saved settings.
var currentScript = redis.NewScript(`
local head = redis.call('HGET', KEYS[1], 'head')
if not head then
  return false
end
return {head, redis.call('HGET', KEYS[1], 'v' .. head)}
`)

// Settings returns the portal's current settings and their version; a portal that
// never saved any gets empty settings and version 0 (nothing is written).
func (e *Engine) Settings(ctx context.Context, memberID string) (*Settings, int, error) {
	vals, err := currentScript.Run(ctx, e.rdb, []string{keyspace.RoutingSettings(memberID)}).Slice()
	if errors.Is(err, redis.Nil) {
		return &Settings{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read settings of portal %s: %w", memberID, err)
	}
	if len(vals) != 2 {
		return nil, 0, fmt.Errorf("read settings of portal %s: got %v", memberID, vals)
	}
	head, _ := vals[0].(string)
	cur, _ := vals[1].(string)
	v, err := strconv.Atoi(head)
	if err != nil {
		return nil, 0, fmt.Errorf("read settings of portal %s: version %q: %w", memberID, head, err)
	}
	var sv savedVersion
	if err := json.Unmarshal([]byte(cur), &sv); err != nil || sv.Settings == nil {
		return nil, 0, fmt.Errorf("decode settings %d of portal %s: %w", v, memberID, err)
	}
	return sv.Settings, v, nil
}

// SaveSettings validates s and stores it as the portal's new current version, kept
// with its author and time. Invalid settings return a *ValidationError and change
// nothing.
func (e *Engine) SaveSettings(ctx context.Context, memberID string, s *Settings,
	author int64) (int, error) {
	return e.save(ctx, memberID, s, author, 0)
}

func (e *Engine) save(ctx context.Context, memberID string, s *Settings, author int64,
	rollbackOf int) (int, error) {
	if s == nil {
		return 0, &ValidationError{Fields: map[string]string{"": "The settings are empty."}}
	}
	if err := s.Validate(); err != nil {
		return 0, err
	}
	body, err := json.Marshal(savedVersion{Author: author, SavedAt: time.Now().UTC(),
		RollbackOf: rollbackOf, Settings: s})
	if err != nil {
		return 0, fmt.Errorf("encode settings of portal %s: %w", memberID, err)
	}
	v, err := saveScript.Run(ctx, e.rdb, []string{keyspace.RoutingSettings(memberID)}, body).Int()
	if err != nil {
		return 0, fmt.Errorf("save settings of portal %s: %w", memberID, err)
	}
	e.log.Info("routing settings saved", "member_id", memberID, "version", v,
		"author", author, "rollback_of", rollbackOf)
	return v, nil
}

// Versions lists every saved version of the portal's settings, newest first.
func (e *Engine) Versions(ctx context.Context, memberID string) ([]VersionInfo, error) {
	all, err := e.rdb.HGetAll(ctx, keyspace.RoutingSettings(memberID)).Result()
	if err != nil {
		return nil, fmt.Errorf("list settings versions of portal %s: %w", memberID, err)
	}
	var out []VersionInfo
	for f, body := range all {
		n, ok := versionField(f)
		if !ok {
			continue
		}
		var sv savedVersion
		if err := json.Unmarshal([]byte(body), &sv); err != nil {
			return nil, fmt.Errorf("decode settings %d of portal %s: %w", n, memberID, err)
		}
		out = append(out, VersionInfo{Version: n, Author: sv.Author, SavedAt: sv.SavedAt,
			RollbackOf: sv.RollbackOf})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// versionField parses a "v<N>" field name.
func versionField(f string) (int, bool) {
	rest, ok := strings.CutPrefix(f, "v")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// Version returns the settings saved as version v, or ErrNoVersion.
func (e *Engine) Version(ctx context.Context, memberID string, v int) (*Settings, error) {
	body, err := e.rdb.HGet(ctx, keyspace.RoutingSettings(memberID), "v"+strconv.Itoa(v)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("settings %d of portal %s: %w", v, memberID, ErrNoVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("read settings %d of portal %s: %w", v, memberID, err)
	}
	var sv savedVersion
	if err := json.Unmarshal([]byte(body), &sv); err != nil || sv.Settings == nil {
		return nil, fmt.Errorf("decode settings %d of portal %s: %w", v, memberID, err)
	}
	return sv.Settings, nil
}

// Rollback makes version v current again by saving it as a new version, so the
// history keeps every step. It returns the new version number.
func (e *Engine) Rollback(ctx context.Context, memberID string, v int, author int64) (int, error) {
	s, err := e.Version(ctx, memberID, v)
	if err != nil {
		return 0, err
	}
	return e.save(ctx, memberID, s, author, v)
}

// Diff lists what changed from version from to version to; version 0 stands for
// empty settings.
func (e *Engine) Diff(ctx context.Context, memberID string, from, to int) ([]Change, error) {
	a, err := e.versionOrEmpty(ctx, memberID, from)
	if err != nil {
		return nil, err
	}
	b, err := e.versionOrEmpty(ctx, memberID, to)
	if err != nil {
		return nil, err
	}
	return DiffSettings(a, b), nil
}

func (e *Engine) versionOrEmpty(ctx context.Context, memberID string, v int) (*Settings, error) {
	if v == 0 {
		return &Settings{}, nil
	}
	return e.Version(ctx, memberID, v)
}
