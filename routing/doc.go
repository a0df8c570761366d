// Package routing decides who becomes the responsible person of a new CRM lead.
//
// A portal's Settings (versioned in Redis, the last KeptVersions kept with their authors)
// say which leads to route, the teams of people with their weights, caps, schedules
// and strategies, and the ordered rules that send a lead to a team or a person.
// Engine.Decide takes the lead, the people's facts (Directory) and the time from the
// caller and never calls Bitrix24; Settings.Needs tells the caller which facts to
// fetch.
//
// A decision has two halves. In Go, the settings pick the rule and the chain of
// steps (an existing client's owner, the team, its fallbacks), and every candidate is
// checked against the directory: active, not absent, clocked in when the team asks,
// inside working hours in their time zone, not paused. Then one Lua script
// (decide.lua), on keys that share the portal's hash tag, re-checks the daily and
// open-lead caps against the rotation ledger, picks among the eligible by the team's
// strategy, records the turn and stores the decision for the lead, so that deciding
// the lead again returns the same answer and spends no turn. The simulation runs the
// same plan through ledger.decide, the script's twin in Go, on a copy of the ledger.
//
// Fairness lives in one ledger per person shared by all teams and sources: weighted
// credit, time of the last lead, leads today and open leads. A person who is not
// eligible neither earns nor loses credit, and credits are clamped to the team's total
// weight, so a returner, a newcomer (credit 0, the team's mean) or a person whose
// weight changed catches up by about one lead at most; least-loaded teams bound a
// returner's catch-up with MaxStreak leads in a row.
//
// Redis cost: a decision is one script call (EVALSHA; six commands in all, counting
// the script's own). The engine caches each portal's settings; the script compares
// the cached version with the stored one and answers "stale" when they differ, so the
// first decision of a portal on an instance, or the first after a save elsewhere, costs
// one more call to read the settings. Nothing is written for a portal until its first
// save, and nothing for leads that are held or not routed.
//
// Also: Engine.Diff and DiffSettings list changes between
// versions; NewEngineOptions tunes the decision TTL and the random source; a Decision
// reports Repeated when it was decided before; Report (from Simulate) also counts
// skips per person and leads per rule. The last KeptVersions saved versions are kept;
// each save beyond them drops the oldest.
package routing
