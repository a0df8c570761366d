package bitrixtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestWithXOAuth2 drives the token endpoint with golang.org/x/oauth2, the library the
// app refreshes with, the way the tooling notes configure it.
func TestWithXOAuth2(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	p := s.NewPortal(PortalOptions{})
	first := p.Tokens(1)
	cfg := &oauth2.Config{
		ClientID: s.ClientID(), ClientSecret: s.ClientSecret(),
		Endpoint: oauth2.Endpoint{TokenURL: s.OAuthURL() + "/oauth/token/",
			AuthStyle: oauth2.AuthStyleInParams},
	}
	ctx := context.Background()
	stale := &oauth2.Token{AccessToken: first.AccessToken, RefreshToken: first.RefreshToken,
		Expiry: time.Now().Add(-time.Minute)}
	fresh, err := cfg.TokenSource(ctx, stale).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == first.RefreshToken || fresh.Expiry.Before(time.Now()) {
		t.Errorf("refreshed token = %+v", fresh)
	}
	if fresh.Extra("client_endpoint") != p.ClientEndpoint() ||
		fresh.Extra("member_id") != p.MemberID() || fresh.Extra("user_id") != float64(1) {
		t.Errorf("extras: client_endpoint %v member_id %v user_id %v",
			fresh.Extra("client_endpoint"), fresh.Extra("member_id"), fresh.Extra("user_id"))
	}
	_, err = cfg.TokenSource(ctx, stale).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("reusing the refresh token: %v, want a RetrieveError invalid_grant", err)
	}
}
