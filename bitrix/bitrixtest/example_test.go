package bitrixtest_test

import (
	"fmt"
	"os"
	"os/signal"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
)

// A standalone fake portal, as `go run ./app fakeportal` runs it: listen, seed the demo
// portal, print where to open it, serve until interrupted.
func ExampleListen() {
	s, err := bitrixtest.Listen(bitrixtest.Options{Addr: "127.0.0.1:8024"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer s.Close()
	demo := s.DemoPortal()
	fmt.Println("portal page:  ", s.URL()+"/portal/"+demo.Name()+"/")
	fmt.Println("REST endpoint:", demo.ClientEndpoint())
	fmt.Println("OAuth server: ", s.OAuthURL()+"/oauth/token/")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}
