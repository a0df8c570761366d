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

// Portals is a sorted set of the member_ids of live portals (new or active), scored
// by the Unix time their token pair was last stored (install or refresh). Written
// by oauth, which removes blocked and deleted portals; read by the keep-alive and
// reconciliation sweeps. No TTL.
func Portals() string { return "lr:portals" }

// Portal is a hash holding one portal's record: status, domain, endpoints,
// application token, scope, version, language, installing user, timestamps and
// the last error. Written and read by oauth; on uninstall with CLEAN=1 it is
// replaced by a tombstone (status deleted, times). No TTL.
func Portal(memberID string) string { return tagged(memberID) + "portal" }

// Token is a hash holding the portal's install OAuth pair (access_token,
// refresh_token, expiry, user_id). Written by oauth on install and every refresh;
// deleted on uninstall. No TTL.
func Token(memberID string) string { return tagged(memberID) + "token" }

// RefreshLock is a string holding the ID of the instance refreshing the portal's
// tokens. Written and deleted by oauth; lives at most the lock TTL (seconds).
func RefreshLock(memberID string) string { return tagged(memberID) + "refresh-lock" }

// ActivePortals is a set of the member_ids whose status is active. Written by oauth
// on every status change; read by ActivePortals for background work. No TTL.
func ActivePortals() string { return "lr:portals:active" }

// PendingInstalls is a sorted set of the member_ids whose install page ran but
// whose installation is not confirmed yet (status new), scored by the Unix time of
// the install page. Written by oauth; read and trimmed by the lifecycle sweep. No TTL.
func PendingInstalls() string { return "lr:portals:pending" }

// PendingBinds is a sorted set of member_ids whose events and placements must be
// bound again (a bind after ONAPPINSTALL or ONAPPUPDATE failed), scored by the Unix
// time it was asked for. Written by lifecycle; read and trimmed by its sweep. No TTL.
func PendingBinds() string { return "lr:portals:rebind" }

// LifecycleLock is a string holding the ID of the instance running the lifecycle
// sweep (pending installs, token keep-alive), so that one instance sweeps at a
// time. Written with SET NX by lifecycle; lives at most the sweep interval.
func LifecycleLock() string { return "lr:lifecycle:sweep-lock" }

// PortalPattern is the SCAN pattern matching every key of the portal memberID. The
// member_id is checked to hold no glob characters before it is used here.
func PortalPattern(memberID string) string { return tagged(memberID) + "*" }

// ---- REST rate limiting (bitrix) ----

// RateLimit is a hash holding the portal's leaky-bucket state as this deployment
// sees it (level, at), any backoff the portal asked for (until), and the methods
// blocked for their time budget (m:<method>, hold). Written and read by the bitrix
// limiter script; expires when the bucket has drained and every block has ended.
func RateLimit(memberID string) string { return tagged(memberID) + "ratelimit" }

// ---- Settings and routing state (routing) ----

// RoutingSettings is a hash holding the kept versions of the portal's routing
// settings (the last routing.KeptVersions): field "head" is the current version
// number and field "v<N>" the record of version N (JSON with the settings, author
// and time). Written by routing on save and rollback; read by routing on every
// decision (the decision script checks "head"). No TTL; absent until the first save.
func RoutingSettings(memberID string) string { return tagged(memberID) + "routing:settings" }

// RoutingLedger is a hash holding the portal's rotation state: one field per person
// ("u<user_id>": credit, last lead time, day, leads that day, open leads) shared by
// every team and source, and per-team fields ("rr<team_id>" round-robin pointer,
// "st<team_id>" least-loaded streak). Written and read only by the routing decision
// and release scripts. No TTL; absent until the portal's first routed lead.
func RoutingLedger(memberID string) string { return tagged(memberID) + "routing:ledger" }

// RoutingDecision is a string holding the JSON outcome of the decision that assigned
// the lead leadID, so that deciding the same lead again returns it without spending
// a turn. Written by the routing decision script, updated by release; lives for the
// decision TTL (days).
func RoutingDecision(memberID string, leadID int64) string {
	return tagged(memberID) + "routing:decision:" + itoa(leadID)
}

// ---- Event queue and pipeline (queue) ----

// EventStream is a stream of the portal's lead events (fields: event, lead, at,
// attempt). Appended by the /events handler, the reconciliation sweep and retries;
// read through one consumer group shared by all instances; each entry is acknowledged
// and deleted once its lead is settled, so the stream holds only unfinished work.
// No TTL.
func EventStream(memberID string) string { return tagged(memberID) + "events" }

// ReadyPortals is a sorted set of member_ids with queued work, scored by the Unix
// time in milliseconds before which no worker may take the portal: the time it
// became ready for waiting portals, the lease's end while a worker holds it, a later
// time while the portal asks us to slow down. Written by Enqueue and the workers;
// read by the workers. No TTL.
func ReadyPortals() string { return "lr:queue:ready" }

// LaterPortals is a sorted set of member_ids whose held leads or deadline checks
// come due later, scored by the Unix time in milliseconds of the earliest. It is
// kept apart from ReadyPortals so that new events of such a portal are not held
// back until then. Written by the workers when they release a portal; read by the
// workers, which move due portals to ReadyPortals. No TTL.
func LaterPortals() string { return "lr:queue:later" }

// Routed is a hash of the pipeline's record per lead, lead ID → JSON (owner, rule,
// time, whether and when the owner was written back to the portal, whether the
// owner was notified). It makes routing and the write-back happen once per lead,
// and recognises the ONCRMLEADUPDATE echo of the app's own write. Written and read
// by the workers; no TTL.
func Routed(memberID string) string { return tagged(memberID) + "routed" }

// Held is a sorted set of lead IDs that routing held (nobody could take them yet),
// scored by the Unix time in milliseconds of the next attempt. Written and read by
// the workers. No TTL.
func Held(memberID string) string { return tagged(memberID) + "held" }

// Deadlines is a sorted set of lead IDs whose owner has a response deadline
// (routing.Team.Deadline), scored by the Unix time in milliseconds the deadline
// passes. Written by the workers when they write such a lead's owner (in the same
// transaction as the lead's record) and when a check comes too early, and by intake
// with the record of a lead it created with such an owner; read and trimmed by the
// workers, which pass the lead on or drop the check. No TTL.
func Deadlines(memberID string) string { return tagged(memberID) + "deadlines" }

// DeadLetters is a list of JSON entries (ID, lead, event, reason, code, time,
// attempts) the pipeline could not deliver, newest first, capped. Written by the
// workers; read from the settings page, which also retries (removes) entries.
// No TTL.
func DeadLetters(memberID string) string { return tagged(memberID) + "dead" }

// AssignmentLog is a list of JSON entries (time, lead, person, rule, reason), newest
// first, capped. Written by the workers; read by the settings page. No TTL.
func AssignmentLog(memberID string) string { return tagged(memberID) + "log" }

// PipelineStats is a hash of the portal's pipeline counters for one UTC day
// (day = "2006-01-02"): "routed:<user_id>", "skip:<reason>", "held", "dead".
// Written by the workers; read by the settings page; expires after 9 days.
func PipelineStats(memberID, day string) string { return tagged(memberID) + "stats:" + day }

// LastLead is a string holding the highest lead ID the reconciliation sweep has
// seen on the portal, where the next sweep resumes. Written and read by the sweep.
// No TTL.
func LastLead(memberID string) string { return tagged(memberID) + "last-lead" }

// SweepLock is a string holding the consumer name of the instance sweeping the
// portal for missed leads. Written by the sweep with SET NX; lives one sweep
// interval at most.
func SweepLock(memberID string) string { return tagged(memberID) + "sweep-lock" }

// ---- Settings page (handlers) ----

// SettingsReaders is a set of the user IDs (decimal) an administrator allowed to
// read the portal's settings, overview and log. Written by the settings API on an
// administrator's change; read on every settings API request. No TTL.
func SettingsReaders(memberID string) string { return tagged(memberID) + "settings:readers" }

// ---- Intake webhooks ----

// IntakeSourcePortal is a string holding the member_id of the intake source
// sourceID, because an intake URL names no portal. Written by intake.Store on
// create; read on every intake post; deleted on revoke and by intake's uninstall
// hook when the portal's data is removed. No TTL.
func IntakeSourcePortal(sourceID string) string { return "lr:intake:source:" + sourceID }

// IntakeSource is a hash holding one intake source of the portal: name, CRM
// source, options and the SHA-256 of its secret. Written by intake.Store on create,
// update and rotate; read on every intake post; deleted on revoke. No TTL.
func IntakeSource(memberID, sourceID string) string {
	return tagged(memberID) + "intake:source:" + sourceID
}

// IntakeSources is a set of the portal's intake source IDs. Written by intake.Store
// on create and revoke; read by the settings page's list. No TTL.
func IntakeSources(memberID string) string { return tagged(memberID) + "intake:sources" }

// IntakePortals is a set of the member_ids whose intake stream may hold work.
// Written by the intake post script; read by the intake workers; the portal is
// removed by the workers when its stream is empty and by intake's uninstall hook
// when its data is removed. No TTL.
func IntakePortals() string { return "lr:intake:portals" }

// IntakeStream is a stream of accepted intake posts of the portal (field "id", the
// intake ID), read by the consumer group "intake". Written by the intake post script;
// trimmed by the workers as entries are acknowledged. No TTL.
func IntakeStream(memberID string) string { return tagged(memberID) + "intake:stream" }

// IntakeRecord is a hash holding one accepted intake post: source, state, the
// normalized lead (until it is created), attempts, lead ID and owner. Written by the
// intake post script and the workers; read by the status endpoint. No TTL while
// pending or dead; lives seven days once the lead is created.
func IntakeRecord(memberID, intakeID string) string {
	return tagged(memberID) + "intake:post:" + intakeID
}

// IntakeIdempotency is a string holding the intake ID first accepted for one
// idempotency key (client-supplied, or a hash of the payload) of one source. Written
// by the intake post script with SET NX; lives for the source's idempotency window.
func IntakeIdempotency(memberID, sourceID, key string) string {
	return tagged(memberID) + "intake:idem:" + sourceID + ":" + key
}

// IntakeRate is a string counting one source's posts in one minute (window, the Unix
// minute). Written by INCR on every intake post; lives two minutes.
func IntakeRate(memberID, sourceID string, window int64) string {
	return tagged(memberID) + "intake:rate:" + sourceID + ":" + itoa(window)
}

// IntakeDead is a list of intake IDs whose lead could not be created (a permanent
// portal error, or too many attempts). Pushed by the workers; read and drained by
// intake.Worker.Retry. No TTL.
func IntakeDead(memberID string) string { return tagged(memberID) + "intake:dead" }

// itoa formats an integer key part.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
