// Package bitrix is LeadRouter's client of the Bitrix24 REST API, for one portal
// at a time, on the portal's client_endpoint with the install's access token.
//
// Requests are POSTed as JSON with the token in an Authorization: Bearer header,
// never in a URL, so no logged address carries it. Every request has a timeout.
// What the portal answers decides what happens next, by its error code and not
// its HTTP status:
//
//   - expired_token: Auth.Refresh, then the request is sent once more;
//   - QUERY_LIMIT_EXCEEDED: the Limiter learns the bucket is full and paces up
//     to Options.MaxRetries retries, within the caller's context;
//   - OPERATION_TIME_LIMIT: returned with Error.ResetAt (operating_reset_at, or
//     a minute from now when the portal does not say); a MethodLimiter (such as
//     RedisLimiter) then fails further calls of that method fast until the
//     reset, without spending requests; other methods go on. The same holds
//     for a batch command refused this way;
//   - OVERLOAD_LIMIT and every permanent error: returned at once;
//   - a redirect (portal renamed): not followed by net/http, which would turn
//     the POST into a GET; the POST is sent again to the new address and
//     Auth.Moved learns the new client endpoint;
//   - server errors and network failures: retried for methods that only read.
//
// Each error class is a sentinel matched with errors.Is (ErrNotFound, ...), and
// *Error carries the code, description, status and reset time; Temporary tells
// what is worth retrying later.
//
// Batch sends up to MaxBatch commands in one request, encoded as PHP query
// strings (EncodeQuery) with $result[...] references left intact; BatchAll
// splits longer lists. List pages with start/next; ListAfterID reads
// everything with start=-1 and an ID filter, without the portal counting rows.
// ID, Text and Bool read fields that arrive as numbers or strings.
//
// RedisLimiter keeps every app instance inside each portal's leaky bucket with
// one Lua script on keyspace.RateLimit, leaving two requests of headroom.
//
// The package also has: MethodLimiter (per-method
// blocks), Limit with StandardLimit, EnterpriseLimit and
// RedisLimiter.SetPortalLimits (larger buckets per portal), ErrServer (5xx)
// and ErrBadBatch (a batch refused before sending, including references to
// commands that do not run earlier in the same batch), BatchAll,
// BatchResult.Err and Decode, Options.RetryDelay, Text, Bool and ParseID,
// EncodeQuery, and Client.MemberID. Batch commands are sent in the caller's
// order, as the portal runs them in the order their keys arrive.
package bitrix
