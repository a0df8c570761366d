// Package keyspace names every Redis key LeadRouter uses, so that the whole schema can
// be read in one place.
//
// Every key of one portal starts with "lr:{<member_id>}:". The braces are a Redis
// Cluster hash tag: all of a portal's keys live in one slot, so a Lua script or a
// MULTI may touch any of them together. Keys that span portals start with "lr:" and
// carry no tag; no script touches them together with a portal's keys.
//
// Each function documents the key's type, who writes it, who reads it and how long
// it lives.
package keyspace

import "strconv"

// tagged returns the prefix shared by every key of the portal memberID.
func tagged(memberID string) string { return "lr:{" + memberID + "}:" }

// Tag returns the hash tag of the portal memberID's keys, for callers that must
// check a key belongs to a portal's slot.
func Tag(memberID string) string { return "{" + memberID + "}" }

// ---- Portals and tokens (oauth) ----

// Portals is a sorted set of every known member_id, scored by the Unix time of the
// portal's last successful token refresh. Written by oauth on install and refresh;
// read by the keep-alive and reconciliation sweeps. No TTL.
func Portals() string { return "lr:portals" }

// Portal is a hash holding one portal's record: status, domain, endpoints,
// application token, scope, version, language and timestamps. Written and read by
// oauth; deleted on uninstall with CLEAN=1. No TTL.
func Portal(memberID string) string { return tagged(memberID) + "portal" }

// Token is a hash holding the portal's install OAuth pair (access_token,
// refresh_token, expiry, user_id). Written by oauth on install and every refresh;
// deleted on uninstall. No TTL.
func Token(memberID string) string { return tagged(memberID) + "token" }

// RefreshLock is a string holding the ID of the instance refreshing the portal's
// tokens. Written and deleted by oauth; lives at most the lock TTL (seconds).
func RefreshLock(memberID string) string { return tagged(memberID) + "refresh-lock" }

// ---- REST rate limiting (bitrix) ----

// RateLimit is a hash holding the portal's leaky-bucket state as this deployment
// sees it, and any backoff the portal asked for. Written and read by the bitrix
// limiter script; expires when the bucket has drained.
func RateLimit(memberID string) string { return tagged(memberID) + "ratelimit" }

// ---- Settings and routing state (routing) ----

// ---- Event queue and pipeline (queue) ----

// ---- Intake webhooks ----

// itoa formats an integer key part.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
