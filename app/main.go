// Command leadrouter runs LeadRouter, the Bitrix24 application that picks the
// responsible person of every new CRM lead.
//
// Usage:
//
//	leadrouter serve                  production; configuration from the environment
//	leadrouter sandbox [-addr A]      everything on one machine: in-memory Redis, a fake
//	                                  portal with sample people, the app installed into it
//	leadrouter fakeportal [-addr A]   the fake Bitrix24 portal alone, for development
//	leadrouter healthcheck            exits 0 when the local instance answers /healthz
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leadrouter/leadrouter/handlers"
)

const usage = `usage: leadrouter <command> [flags]

commands:
  serve        run LeadRouter (configuration from the environment, see README.md)
  sandbox      run everything locally: in-memory Redis, a fake portal, the app installed
  fakeportal   run the fake Bitrix24 portal alone
  healthcheck  check that the instance on LEADROUTER_ADDR answers
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful stop; a second one ends the process at
	// once, drain delay or not.
	context.AfterFunc(ctx, stop)

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = runServe(ctx, args)
	case "sandbox":
		err = runSandbox(ctx, args)
	case "fakeportal":
		err = runFakePortal(ctx, args)
	case "healthcheck":
		err = runHealthcheck(ctx)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "leadrouter: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "leadrouter: %v\n", err)
		os.Exit(1)
	}
}

// newLogger returns the JSON logger every part of the process writes to. Lines
// logged with a request's context carry its request_id.
func newLogger(level slog.Level) *slog.Logger {
	h := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})
	return slog.New(handlers.WithRequestIDs(h))
}

// runHealthcheck asks the local instance for /healthz; the container image has no
// shell or curl, so its health check runs the binary itself.
func runHealthcheck(ctx context.Context) error {
	addr := or(os.Getenv("LEADROUTER_ADDR"), ":8080")
	if addr[0] == ':' {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("healthz answered " + resp.Status)
	}
	return nil
}
