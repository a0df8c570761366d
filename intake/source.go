package intake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/leadrouter/leadrouter/keyspace"
)

// Defaults for a source's options.
const (
	DefaultCRMSource         = "WEB"
	DefaultRatePerMinute     = 60
	DefaultIdempotencyWindow = 10 * time.Minute
	maxSourceName            = 100
)

// Bounds of a source's options: Create and Update refuse values beyond them.
const (
	MaxRatePerMinute     = 10000
	MaxIdempotencyWindow = 7 * 24 * time.Hour
)

var (
	// ErrNotFound is returned for a source that does not exist, was revoked or belongs
	// to another portal.
	ErrNotFound = errors.New("intake source not found")
	// ErrBadSecret is returned when a post's secret does not match its source's.
	ErrBadSecret = errors.New("intake secret does not match")
)

// Options are the settings of an intake source that a portal administrator chooses.
// The zero value means: CRM source WEB, 60 posts a minute, a ten-minute
// idempotency window, no override of the responsible person.
type Options struct {
	// CRMSource is the SOURCE_ID given to every lead of this source (crm.status.list,
	// ENTITY_ID=SOURCE), e.g. "WEB", "ADVERTISING". Routing rules can match on it.
	CRMSource string `json:"crm_source"`
	// AllowResponsible lets a post name the responsible person with "responsible";
	// the user must be an active user of the portal, otherwise routing decides.
	AllowResponsible bool `json:"allow_responsible"`
	// RatePerMinute caps the posts accepted per minute; further posts get 429.
	RatePerMinute int `json:"rate_per_minute"`
	// IdempotencyWindow is how long a repeated post returns the first lead.
	IdempotencyWindow time.Duration `json:"idempotency_window"`
}

// Source is an intake URL of a portal. Its secret is not part of it: only a hash of
// the secret is stored, and the secret is shown once, by Create and Rotate.
type Source struct {
	ID        string    `json:"id"`
	MemberID  string    `json:"-"`
	Name      string    `json:"name"`
	Options   Options   `json:"options"`
	CreatedAt time.Time `json:"created_at"`
	RotatedAt time.Time `json:"rotated_at"`

	secretHash []byte
}

// Path is the URL path of the source, relative to the app's public URL.
func (s *Source) Path() string { return "/intake/" + s.ID }

// ValidationError lists what is wrong with the options or the name given to the
// Store, by field name ("name", "crm_source", "rate_per_minute", ...).
type ValidationError struct {
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid intake source: " + strings.Join(parts, "; ")
}

// Store keeps the intake sources of every portal in Redis. It is safe for
// concurrent use.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient) *Store {
	return &Store{rdb: rdb, now: time.Now}
}

var crmSourcePattern = regexp.MustCompile(`^[A-Z0-9_|]{1,50}$`)

// normalize fills defaults and checks the options and name.
func normalize(name string, opts Options) (string, Options, error) {
	fields := map[string]string{}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		fields["name"] = "a name is required"
	case utf8.RuneCountInString(name) > maxSourceName:
		fields["name"] = fmt.Sprintf("at most %d characters", maxSourceName)
	}
	opts.CRMSource = strings.ToUpper(strings.TrimSpace(opts.CRMSource))
	if opts.CRMSource == "" {
		opts.CRMSource = DefaultCRMSource
	}
	if !crmSourcePattern.MatchString(opts.CRMSource) {
		fields["crm_source"] = "not a CRM source code (like WEB)"
	}
	switch {
	case opts.RatePerMinute == 0:
		opts.RatePerMinute = DefaultRatePerMinute
	case opts.RatePerMinute < 0 || opts.RatePerMinute > MaxRatePerMinute:
		fields["rate_per_minute"] = fmt.Sprintf("between 1 and %d", MaxRatePerMinute)
	}
	switch {
	case opts.IdempotencyWindow == 0:
		opts.IdempotencyWindow = DefaultIdempotencyWindow
	case opts.IdempotencyWindow < time.Second || opts.IdempotencyWindow > MaxIdempotencyWindow:
		fields["idempotency_window"] = "between one second and seven days"
	}
	if len(fields) > 0 {
		return "", opts, &ValidationError{Fields: fields}
	}
	return name, opts, nil
}

// Create adds an intake source to the portal and returns it with its secret. The
// secret is not stored and cannot be shown again; Rotate replaces it.
func (s *Store) Create(ctx context.Context, memberID, name string,
	opts Options) (*Source, string, error) {
	name, opts, err := normalize(name, opts)
	if err != nil {
		return nil, "", err
	}
	secret := newSecret()
	now := s.now().UTC().Truncate(time.Millisecond)
	src := &Source{ID: newID(16), MemberID: memberID, Name: name, Options: opts,
		CreatedAt: now, RotatedAt: now, secretHash: hashSecret(secret)}
	// The index lives in another slot: it goes first, and one left behind by a
	// failure leads nowhere.
	err = s.rdb.Set(ctx, keyspace.IntakeSourcePortal(src.ID), memberID, 0).Err()
	if err == nil {
		_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, keyspace.IntakeSource(memberID, src.ID), src.record())
			p.SAdd(ctx, keyspace.IntakeSources(memberID), src.ID)
			return nil
		})
	}
	if err != nil {
		return nil, "", fmt.Errorf("create intake source for portal %s: %w", memberID, err)
	}
	return src, secret, nil
}

// Update changes the name and options of the portal's source id; the secret stays.
func (s *Store) Update(ctx context.Context, memberID, id, name string,
	opts Options) (*Source, error) {
	name, opts, err := normalize(name, opts)
	if err != nil {
		return nil, err
	}
	src, err := s.owned(ctx, memberID, id)
	if err != nil {
		return nil, err
	}
	src.Name, src.Options = name, opts
	err = s.rdb.HSet(ctx, keyspace.IntakeSource(memberID, id), src.record()).Err()
	if err != nil {
		return nil, fmt.Errorf("update intake source %s: %w", id, err)
	}
	return src, nil
}

// List returns the portal's sources, oldest first.
func (s *Store) List(ctx context.Context, memberID string) ([]*Source, error) {
	ids, err := s.rdb.SMembers(ctx, keyspace.IntakeSources(memberID)).Result()
	if err != nil {
		return nil, fmt.Errorf("list intake sources of portal %s: %w", memberID, err)
	}
	list := make([]*Source, 0, len(ids))
	for _, id := range ids {
		src, err := s.owned(ctx, memberID, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		list = append(list, src)
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.Before(list[j].CreatedAt)
		}
		return list[i].ID < list[j].ID
	})
	return list, nil
}

// Rotate gives the portal's source id a new secret and returns it; the old secret
// stops working at once.
func (s *Store) Rotate(ctx context.Context, memberID, id string) (string, error) {
	if _, err := s.owned(ctx, memberID, id); err != nil {
		return "", err
	}
	secret := newSecret()
	err := s.rdb.HSet(ctx, keyspace.IntakeSource(memberID, id),
		"secret_sha256", hex.EncodeToString(hashSecret(secret)),
		"rotated_at", s.now().UnixMilli()).Err()
	if err != nil {
		return "", fmt.Errorf("rotate intake secret %s: %w", id, err)
	}
	return secret, nil
}

// Revoke deletes the portal's source id: its URL answers 404 from now on. Posts
// already accepted are still created.
func (s *Store) Revoke(ctx context.Context, memberID, id string) error {
	if _, err := s.owned(ctx, memberID, id); err != nil {
		return err
	}
	// The source first: once it is gone, its URL is dead; the index in another
	// slot goes last.
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keyspace.IntakeSource(memberID, id))
		p.SRem(ctx, keyspace.IntakeSources(memberID), id)
		return nil
	})
	if err == nil {
		err = s.rdb.Del(ctx, keyspace.IntakeSourcePortal(id)).Err()
	}
	if err != nil {
		return fmt.Errorf("revoke intake source %s: %w", id, err)
	}
	return nil
}

// Source returns the source id of any portal, or ErrNotFound.
func (s *Store) Source(ctx context.Context, id string) (*Source, error) {
	if !plainID(id) {
		return nil, ErrNotFound
	}
	memberID, err := s.rdb.Get(ctx, keyspace.IntakeSourcePortal(id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find intake source %s: %w", id, err)
	}
	return s.owned(ctx, memberID, id)
}

// Authenticate returns the source id when secret is its secret, ErrNotFound when
// there is no such source and ErrBadSecret otherwise. The comparison takes the same
// time wherever the secrets differ.
func (s *Store) Authenticate(ctx context.Context, id, secret string) (*Source, error) {
	src, err := s.Source(ctx, id)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), src.secretHash) != 1 {
		return nil, ErrBadSecret
	}
	return src, nil
}

// owned returns the source id of the portal memberID, or ErrNotFound.
func (s *Store) owned(ctx context.Context, memberID, id string) (*Source, error) {
	if !plainID(id) {
		return nil, ErrNotFound
	}
	h, err := s.rdb.HGetAll(ctx, keyspace.IntakeSource(memberID, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read intake source %s: %w", id, err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	return parseRecord(memberID, id, h)
}

func (s *Source) record() map[string]any {
	return map[string]any{
		"name":               s.Name,
		"crm_source":         s.Options.CRMSource,
		"allow_responsible":  strconv.FormatBool(s.Options.AllowResponsible),
		"rate_per_minute":    s.Options.RatePerMinute,
		"idempotency_window": int64(s.Options.IdempotencyWindow / time.Second),
		"created_at":         s.CreatedAt.UnixMilli(),
		"rotated_at":         s.RotatedAt.UnixMilli(),
		"secret_sha256":      hex.EncodeToString(s.secretHash),
	}
}

func parseRecord(memberID, id string, h map[string]string) (*Source, error) {
	src := &Source{ID: id, MemberID: memberID, Name: h["name"]}
	src.Options.CRMSource = h["crm_source"]
	src.Options.AllowResponsible = h["allow_responsible"] == "true"
	var errs []error
	num := func(k string) int64 {
		n, err := strconv.ParseInt(h[k], 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", k, err))
		}
		return n
	}
	src.Options.RatePerMinute = int(num("rate_per_minute"))
	src.Options.IdempotencyWindow = time.Duration(num("idempotency_window")) * time.Second
	src.CreatedAt = time.UnixMilli(num("created_at")).UTC()
	src.RotatedAt = time.UnixMilli(num("rotated_at")).UTC()
	hash, err := hex.DecodeString(h["secret_sha256"])
	if err != nil || len(hash) != sha256.Size {
		errs = append(errs, errors.New("field secret_sha256: not a SHA-256"))
	}
	src.secretHash = hash
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("read intake source %s: %w", id, err)
	}
	return src, nil
}

// newSecret returns 32 random bytes, URL-safe base64: 256 bits, so a plain SHA-256
// of it is as good as a slow password hash.
func newSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newID returns n random bytes in hex.
func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// plainID reports whether id could be an ID made by newID, so that nothing else
// reaches a Redis key.
func plainID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
