package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
)

// runFakePortal serves the fake Bitrix24 portal and OAuth server alone, with one
// demo portal, until ctx ends.
func runFakePortal(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fakeportal", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "where the fake portal listens (host:port)")
	oauthAddr := fs.String("oauth-addr", "", "where the fake OAuth server listens (default: a free port)")
	rate := fs.Float64("rate", 2, "requests a second a portal's REST bucket drains; negative turns limits off")
	burst := fs.Int("burst", 50, "size of a portal's REST bucket")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := bitrixtest.Listen(bitrixtest.Options{
		Addr: *addr, OAuthAddr: *oauthAddr, Rate: *rate, Burst: *burst, Logger: log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	demo := srv.DemoPortal()

	fmt.Printf("Fake Bitrix24 portal ready.\n\n")
	fmt.Printf("  portals:          %s/\n", srv.URL())
	fmt.Printf("  demo portal:      %s/portal/%s/\n", srv.URL(), demo.Name())
	fmt.Printf("  REST endpoint:    %s\n", demo.ClientEndpoint())
	fmt.Printf("  OAuth server:     %s/oauth/token/\n", srv.OAuthURL())
	fmt.Printf("  client_id:        %s\n", srv.ClientID())
	fmt.Printf("  client_secret:    %s\n\n", srv.ClientSecret())
	fmt.Printf("Press Ctrl+C to stop.\n")
	<-ctx.Done()
	return nil
}
