// Package oauth keeps LeadRouter's record of every portal that installed it and the
// portal's OAuth tokens, in Redis, keyed by member_id.
//
// A portal record moves through the statuses new (install page seen), active
// (installation confirmed), blocked (the portal's refresh token was refused for
// good) and deleted (uninstalled). Every key of a portal shares its hash tag, so a
// transaction may touch the record and the tokens together on a Redis Cluster.
//
// Tokens are refreshed lazily: a REST call that meets expired_token calls the
// portal's bitrix.Auth, which refreshes through golang.org/x/oauth2 against the
// portal's own OAuth server. One refresh per portal runs at a time across all
// instances (a Redis lock, released by a compare-and-delete script) and inside one
// process (a single flight per portal and stale token); the rotated pair is written
// to Redis, guarded by a compare-and-set on the refresh token it replaces, before
// anybody uses it. A refresh that answers invalid_grant re-reads Redis first, since
// another instance may have won, and only then blocks the portal with a reason the
// settings page shows. KeepAlive refreshes portals whose refresh token has not been
// used for weeks; nothing refreshes on a timer per call.
//
// The client secret goes only to an OAuth server this package trusts: the
// configured one and Bitrix24's own (oauth.bitrix.info, oauth.bitrix24.tech). A
// server_endpoint naming any other host is ignored in favour of the configured
// server, because the install page's fields come from a browser.
//
// Pages the portal opens are trusted through VerifyFrame, which checks the posted
// AUTH_ID against the OAuth server's app.info or against the portal address already
// stored for that member_id, never against an address the browser posted. Sessions
// then issues a short-lived signed token that page scripts send as a Bearer header.
// A verified administrator's page also repairs a portal: a blocked one takes the
// page's fresh tokens, and one that never learnt its application token takes the
// page's.
//
// Store also exports the write operations the lifecycle package needs (SaveInstall,
// Activate, MarkBound, Uninstall, Block, Forget); CheckApplicationToken refuses
// deleted portals.
package oauth
