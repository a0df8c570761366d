package bitrixtest

import (
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The documented payloads below are the field lists of the protocol notes
// (shared/bitrix24/protocol.md): a real ONCRMCONTACTADD wire body from the PHP SDK's
// fixtures (§6.2), the token answer (§2.3), ONAPPINSTALL / ONAPPUNINSTALL (§1.4,
// §1.5), the frame POST (§1.2), the envelopes (§3.3, §5) and the OAuth server's
// app.info (§10.1). The fake must send the same keys, in the same order where the
// wire has one.

// documentedCRMEvent is the key order of the real CRM event body (§6.2).
var documentedCRMEvent = []string{"event", "event_handler_id", "data[FIELDS][ID]", "ts",
	"auth[access_token]", "auth[expires]", "auth[expires_in]", "auth[scope]", "auth[domain]",
	"auth[server_endpoint]", "auth[status]", "auth[client_endpoint]", "auth[member_id]",
	"auth[user_id]", "auth[application_token]"}

// bodyKeys returns the decoded keys of a form body in wire order.
func bodyKeys(t *testing.T, body string) []string {
	t.Helper()
	var keys []string
	for _, pair := range strings.Split(body, "&") {
		k, _, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			t.Fatalf("decode %q: %v", k, err)
		}
		keys = append(keys, key)
	}
	return keys
}

func TestCRMEventMatchesRealWireBody(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONCRMLEADADD")
	in.portal.AddLead(1, nil)
	d := waitDeliveries(t, in.portal, 1)[0]
	if got := bodyKeys(t, d.Body); !slices.Equal(got, documentedCRMEvent) {
		t.Errorf("wire keys =\n%v\nwant\n%v", got, documentedCRMEvent)
	}
	if !strings.Contains(d.Body, "data%5BFIELDS%5D%5BID%5D=1&") {
		t.Errorf("brackets not percent-encoded as a PHP form: %.80s", d.Body)
	}
}

func TestAppEventsMatchDocumentedFields(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{}, "ONAPPINSTALL", "ONAPPUNINSTALL")
	waitDeliveries(t, in.portal, 1)
	in.portal.Uninstall(false)
	ds := waitDeliveries(t, in.portal, 2)
	tests := []struct {
		name string
		d    Delivery
		want []string
	}{
		// §1.4: the docs' keys plus event_handler_id, auth[expires] and auth[user_id]
		// from the SDK fixtures.
		{"ONAPPINSTALL", ds[0], []string{"event", "event_handler_id", "data[VERSION]",
			"data[ACTIVE]", "data[INSTALLED]", "data[LANGUAGE_ID]", "ts", "auth[access_token]",
			"auth[refresh_token]", "auth[expires]", "auth[expires_in]", "auth[scope]",
			"auth[domain]", "auth[server_endpoint]", "auth[status]", "auth[client_endpoint]",
			"auth[member_id]", "auth[user_id]", "auth[application_token]"}},
		// §1.5: no tokens at all.
		{"ONAPPUNINSTALL", ds[1], []string{"event", "event_handler_id", "data[LANGUAGE_ID]",
			"data[CLEAN]", "ts", "auth[domain]", "auth[server_endpoint]",
			"auth[client_endpoint]", "auth[member_id]", "auth[application_token]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bodyKeys(t, tt.d.Body); !slices.Equal(got, tt.want) {
				t.Errorf("keys =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestDocumentedShapes(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	p := in.portal
	tok := refresh(t, in.srv, in.tok.RefreshToken, false)
	list := postJSON(t, p.ClientEndpoint(), "crm.lead.list", tok.Body["access_token"].(string),
		nil)
	batch := postJSON(t, p.ClientEndpoint(), "batch", tok.Body["access_token"].(string),
		map[string]any{"cmd": map[string]any{"a": "profile"}})
	info := postJSON(t, in.srv.OAuthURL()+"/rest/", "app.info",
		tok.Body["access_token"].(string), nil)
	tests := []struct {
		name string
		got  map[string]any
		want []string
	}{
		{"token answer (§2.3)", tok.Body, []string{"access_token", "client_endpoint", "domain",
			"expires", "expires_in", "member_id", "refresh_token", "scope", "server_endpoint",
			"status", "user_id"}},
		{"list envelope (§3.3)", list.Body, []string{"result", "time", "total"}},
		{"time block (§3.3)", list.Body["time"].(map[string]any), []string{"date_finish",
			"date_start", "duration", "finish", "operating", "operating_reset_at",
			"processing", "start"}},
		{"batch result (§5)", batch.Body["result"].(map[string]any), []string{"result",
			"result_error", "result_next", "result_time", "result_total"}},
		{"OAuth app.info (§10.1)", info.Body["result"].(map[string]any), []string{"client_id",
			"expires", "install", "scope", "user_id"}},
		{"OAuth app.info install (§10.1)",
			info.Body["result"].(map[string]any)["install"].(map[string]any),
			[]string{"client_endpoint", "domain", "installed", "member_id", "member_type",
				"scope", "status", "uri", "version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sortedKeys(tt.got); !slices.Equal(got, tt.want) {
				t.Errorf("keys = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFrameFormMatchesDocumentedFields(t *testing.T) {
	t.Parallel()
	in := setup(t, Options{})
	q, body := in.portal.OpenForm(1, "CRM_LEAD_DETAIL_TAB", map[string]any{"ID": 8061})
	var qk, bk []string
	for k := range q {
		qk = append(qk, k)
	}
	for k := range body {
		bk = append(bk, k)
	}
	sort.Strings(qk)
	sort.Strings(bk)
	wantQuery := []string{"APP_SID", "DOMAIN", "LANG", "PROTOCOL"}
	wantBody := []string{"APPLICATION_SCOPE", "APPLICATION_TOKEN", "AUTH_EXPIRES", "AUTH_ID",
		"PLACEMENT", "PLACEMENT_OPTIONS", "REFRESH_ID", "SERVER_ENDPOINT", "member_id",
		"status"}
	if !slices.Equal(qk, wantQuery) || !slices.Equal(bk, wantBody) {
		t.Errorf("query %v body %v, want %v %v", qk, bk, wantQuery, wantBody)
	}
}
