// Package bitrixtest is a fake Bitrix24: any number of portals on one loopback
// listener and an OAuth server on another, behaving like the cloud on every point
// LeadRouter relies on.
// Tests start one with Start (or NewServer), create portals, register the app, drive
// the install the way a portal's page does, and then talk to the portal only over
// HTTP, like the app does in production.
//
// A typical test:
//
//	srv := bitrixtest.Start(t, bitrixtest.Options{ClientID: id, ClientSecret: secret})
//	p := srv.NewPortal(bitrixtest.PortalOptions{Name: "acme", Users: users})
//	p.RegisterApp(bitrixtest.App{InstallURL: app + "/install", HandlerURL: app + "/app"})
//	query, body := p.OpenForm(1, "DEFAULT", nil) // POST these to the install URL
//	_ = p.FinishInstall(1)                       // ONAPPINSTALL goes out
//	id := p.AddLead(2, map[string]any{"TITLE": "Call me"})
//	_ = p.WaitDeliveries(ctx, 2)                 // ONAPPINSTALL, then ONCRMLEADADD
//
// Standalone, Listen and DemoPortal give a server a person can use in a browser:
// URL()+"/" lists the portals, and each portal's page adds users and leads, registers
// and installs the app, issues tokens and shows the event deliveries. Handle adds more
// pages to the same listener (the emulated portal frame uses it).
//
// # How it maps to Bitrix24
//
//   - OAuth server: OAuthURL()+"/oauth/token/" takes GET or POST (form, or HTTP Basic
//     credentials) with grant_type refresh_token or authorization_code. Refresh tokens
//     are single-use and rotate on every refresh; reuse answers 400 invalid_grant. An
//     unknown client_id answers HTTP 200 with error wrong_client, a wrong secret 400
//     invalid_client. The answer carries the extra fields of the real one (member_id,
//     domain = the OAuth host, client_endpoint, server_endpoint, status, scope, expires,
//     expires_in, user_id) and no token_type. OAuthURL()+"/rest/app.info" answers in
//     the OAuth-server shape (client_id, install{member_id, domain, client_endpoint...}).
//   - Portal REST: ClientEndpoint()+"<method>[.json]" with the token in the
//     Authorization: Bearer header, or in auth / access_token (query, form or JSON body).
//     Parameters come as JSON, as PHP-bracket forms or in the query string, merged.
//     Answers allow cross-origin calls (CORS), as browser SDKs in the app frame need.
//     Answers use the legacy envelope (result, total, next, time{... operating,
//     operating_reset_at}); CRM rows are strings, null for empty, [] for empty arrays.
//   - Checks run in the portal's order: PORTAL_DELETED (500), OVERLOAD_LIMIT (503),
//     the leaky bucket (503 QUERY_LIMIT_EXCEEDED; a batch counts once), the token
//     (401 NO_AUTH_FOUND, invalid_token, expired_token; authorization_error for a
//     dismissed user), PAYMENT_REQUIRED (401),
//     ACCESS_DENIED (403), ERROR_METHOD_NOT_FOUND (404), insufficient_scope (401), and
//     the per-method operating budget (429 OPERATION_TIME_LIMIT with
//     time.operating_reset_at, also in a batch command's result_error entry).
//   - Events go out asynchronously from a small pool of workers: one form-encoded POST
//     with bracket keys per bound handler, never retried, recorded in Deliveries. CRM
//     events carry the acting user's access token and no refresh token; changes
//     without a user (byUser 0) carry no token at all; ONAPPINSTALL and ONAPPUPDATE carry
//     a refresh token; ONAPPUNINSTALL carries only domain, endpoints, member_id and
//     application_token. Nothing but ONAPPINSTALL goes out before FinishInstall.
//     Tokens minted for events carry the portal's event-session counter (three hops):
//     a change made with such a token raises events one hop shorter.
//   - Offline events keep one row per object and event; a change the app itself makes
//     through REST is not queued for an offline binding without auth_connector.
//
// # What it simplifies
//
//   - Portals share a listener and are told apart by a path prefix,
//     "/portal/<name>/rest/"; Domain() is that listener's host:port for all of them.
//     The OAuth server has a listener of its own, so the token answer's domain (the
//     OAuth host) is not the portal's.
//     A Rename moves the prefix, and the old one answers 302.
//   - The server knows one application (Options.ClientID); each portal has at most one
//     installation of it. There are no webhooks and no REST 3.0.
//   - Like the cloud, event.bind refuses handler URLs whose host has no dot
//     ("localhost"); use 127.0.0.1.
//   - Event deliveries are served to the portals in turn (one portal's burst does not
//     hold back another's), by Options.DeliveryWorkers workers; with more than one
//     worker, deliveries of one portal may overtake each other, as they may in the cloud.
//   - The operating budget counts the fake's own (tiny) execution time; tests push a
//     method over it with Portal.AddOperatingTime.
//   - insufficient_scope answers 401 and PORTAL_DELETED 500 where sources disagree; a
//     revoked access token (Options.RevokeOnRefresh) answers expired_token.
//   - Only the CRM entities lead, contact and company exist; a lead list's order
//     keys apply in the order given, ties broken by ID.
//
// Fault injection (SetFaults) adds server errors, limit answers, slow answers and
// dropped, duplicated or reordered event deliveries, drawn from a seeded generator.
package bitrixtest
