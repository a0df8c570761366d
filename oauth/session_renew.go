package oauth

import "time"

// VerifyRenewable checks a token as Verify does, but accepts one that expired less
// than grace ago. A page whose session ran out shows it when it asks for a new one
// with fresh portal auth: the session names who the fresh auth must belong to, and
// is never itself enough to call the settings API.
func (s *Sessions) VerifyRenewable(token string, grace time.Duration) (*Session, error) {
	late := *s
	late.now = func() time.Time { return s.now().Add(-grace) }
	return late.Verify(token)
}
