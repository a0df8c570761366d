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

// KeptVersions is how many settings versions a portal keeps: each save beyond it
// drops the oldest.
const KeptVersions = 200

// ErrConflict is returned by SaveOver when another save came first.
var ErrConflict = errors.New("the settings were saved meanwhile")

// saveScript stores a new settings version, unless the current one is not the
// expected one, and drops the version that falls out of the kept ones.
//
// KEYS[1]  routing settings hash (keyspace.RoutingSettings)
// ARGV[1]  the version record as JSON (type savedVersion)
// ARGV[2]  the expected current version, or -1 for any
// ARGV[3]  KeptVersions
//
// Returns the new version number ("head" counted up, the record stored under
// "v<head>"), or -1 when the current version is not the expected one.
var saveScript = redis.NewScript(`
local expected = tonumber(ARGV[2])
if expected >= 0 and tonumber(redis.call('HGET', KEYS[1], 'head') or '0') ~= expected then
  return -1
end
local v = redis.call('HINCRBY', KEYS[1], 'head', 1)
redis.call('HSET', KEYS[1], 'v' .. v, ARGV[1])
local old = v - tonumber(ARGV[3])
if old > 0 then
  redis.call('HDEL', KEYS[1], 'v' .. old)
end
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
	return e.save(ctx, memberID, s, author, 0, -1)
}

// SaveOver is SaveSettings for an editor that started from version base: when
// another version was saved since, it returns ErrConflict and changes nothing.
// The check and the save are one step, so two editors never both succeed.
func (e *Engine) SaveOver(ctx context.Context, memberID string, s *Settings, author int64,
	base int) (int, error) {
	return e.save(ctx, memberID, s, author, 0, base)
}

func (e *Engine) save(ctx context.Context, memberID string, s *Settings, author int64,
	rollbackOf, base int) (int, error) {
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
	v, err := saveScript.Run(ctx, e.rdb, []string{keyspace.RoutingSettings(memberID)}, body,
		base, KeptVersions).Int()
	if err != nil {
		return 0, fmt.Errorf("save settings of portal %s: %w", memberID, err)
	}
	if v < 0 {
		return 0, fmt.Errorf("save settings of portal %s over version %d: %w", memberID, base,
			ErrConflict)
	}
	e.log.Info("routing settings saved", "member_id", memberID, "version", v,
		"author", author, "rollback_of", rollbackOf)
	return v, nil
}

// Versions lists the kept versions of the portal's settings, newest first.
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
	return e.save(ctx, memberID, s, author, v, -1)
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
