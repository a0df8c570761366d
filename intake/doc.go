// Package intake receives leads from outside Bitrix24 — landing pages, ad
// platforms, scripts — on intake URLs, and creates each lead in the portal with the
// responsible person that routing chooses, so the lead is born with its owner.
//
// # Sources
//
// An intake source is one URL of one portal, /intake/<source id>, where the ID is
// 128 random bits. Each source has a secret (256 random bits) that a post carries
// in the X-LeadRouter-Secret header, a "secret" query parameter or a "secret" body
// field. Only the secret's SHA-256 is stored; it is compared in constant time. The
// secret is shown once, when the source is created or rotated.
//
// The settings page manages sources through Store. Every method takes the portal of
// the caller's session and refuses (ErrNotFound) a source of another portal:
//
//	Create(ctx, memberID, name, Options) (*Source, secret, error) // show the secret once
//	List(ctx, memberID) ([]*Source, error)                      // oldest first, no secrets
//	Update(ctx, memberID, id, name, Options) (*Source, error)   // the secret stays
//	Rotate(ctx, memberID, id) (secret, error)                   // the old secret stops at once
//	Revoke(ctx, memberID, id) error                             // the URL answers 404
//
// Create and Update return *ValidationError with a message per field ("name",
// "crm_source", "rate_per_minute", "idempotency_window"), ready for a 422 answer.
// Source marshals to JSON as the page shows it: id, name, options (crm_source,
// allow_responsible, rate_per_minute, idempotency_window in nanoseconds),
// created_at, rotated_at. The URL to show is the app's public URL + Source.Path().
// A settings API answering these should let only portal administrators call
// Create, Update, Rotate and Revoke, and must never log a returned secret.
//
// # Posts
//
// Parse reads JSON or form posts, flat (name or first_name + last_name, phone,
// email, comment or message, title, utm_*, amount, currency, UF_CRM_* custom fields)
// or in crm.lead.add's own shape (fields[NAME], fields[PHONE][0][VALUE], ...), and
// answers FieldErrors with a message per field. Fields it does not know are ignored
// and listed. "responsible" (or fields[ASSIGNED_BY_ID]) names the owner; a source
// must allow that, and the user must be an active user of the portal, otherwise
// routing decides and the post's status says why.
//
// Service.Accept stores a post in Redis — the record and an entry on the portal's
// intake stream, in one script — before the post is answered, and recognises a
// repeated post within the source's idempotency window (by the Idempotency-Key
// header or idempotency_key field, else by the lead itself) and returns the first
// post's receipt. Service.Allow is the per-source rate limit.
//
// A portal that uninstalls LeadRouter gets no more posts: Accept refuses them with
// ErrPortalGone, in the script that would store them. Service.Forget is the
// uninstall hook; when the portal's data is deleted it removes the global keys that
// name the portal (its sources' entries and its place in the workers' index), so
// its intake URLs are gone; when the data is kept, the URLs work again after a
// reinstall and the posts accepted before it are created then.
//
// # Creating leads
//
// Service's workers read every portal's intake stream through one consumer group
// shared by all instances. For each post a worker takes a lease on its record,
// decides the owner through Router (routing, with SOURCE_ID set to the source's CRM
// source and the source's ID and name given as INTAKE_SOURCE and
// SOURCE_DESCRIPTION), saves the decision so a retry does not spend a second turn,
// creates the lead with crm.lead.add (ASSIGNED_BY_ID set, ORIGINATOR_ID and
// ORIGIN_ID naming the post so a retry after a lost answer finds the lead instead of
// adding another) with the decision's reason on its timeline — up to 25 leads in
// one REST batch — and tells Router the lead's ID, so the pipeline takes the lead's
// ONCRMLEADADD as already routed. Failures the portal may get over (rate limits,
// outages, expired tokens) are retried with growing waits; a post abandoned by a
// crashed worker is claimed by another; a refusal of the lead itself, or too many
// attempts, makes the post a dead letter. The settings page lists a portal's dead
// posts with Service.DeadLetters (source, problem and time, nothing of the person)
// and sends them again with Service.Retry and Service.RetryAll. The person's
// details are removed from Redis once the lead exists.
//
// EngineRouter is the Router of a deployment. It decides with routing.Engine under
// a negative stand-in lead ID derived from the intake ID (the lead has no ID yet),
// reading the people the settings name in one batch and reusing them for
// DirectoryTTL. Once the lead exists it moves the decision to the lead's ID, so
// deciding the lead again returns the same owner without spending a turn, and
// writes the pipeline's per-lead record (owner written, decision noted), its
// assignment-log line and its daily count, so the pipeline settles the lead's
// ONCRMLEADADD as already routed. A lead routing held or did not route is created
// without an owner and left to the pipeline.
//
// This package runs its own consumer group rather than the pipeline's queue: the
// pipeline's stream carries lead IDs of leads that already exist, while an intake
// post carries a lead that does not exist yet.
//
// Nothing that identifies a person is logged: no names, phones, e-mails or bodies;
// log lines carry member_id, source_id, intake_id, lead_id and the owner's user ID.
package intake
