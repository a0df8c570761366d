package bitrix_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/leadrouter/leadrouter/bitrix"
)

// leadAddBody is a CRM add event as Bitrix24 puts it on the wire.
const leadAddBody = "event=ONCRMLEADADD&event_handler_id=58&data%5BFIELDS%5D%5BID%5D=134806" +
	"&ts=1727018926&auth%5Baccess_token%5D=be45f066&auth%5Bexpires%5D=1727022526" +
	"&auth%5Bexpires_in%5D=3600&auth%5Bscope%5D=crm%2Cplacement%2Cuser_brief" +
	"&auth%5Bdomain%5D=example.bitrix24.com" +
	"&auth%5Bserver_endpoint%5D=https%3A%2F%2Foauth.bitrix.info%2Frest%2F" +
	"&auth%5Bstatus%5D=L&auth%5Bclient_endpoint%5D=https%3A%2F%2Fexample.bitrix24.com%2Frest%2F" +
	"&auth%5Bmember_id%5D=010b6886ebc205e43ae65000ee00addb&auth%5Buser_id%5D=1" +
	"&auth%5Bapplication_token%5D=51856fefc120afa4b628cc82d3935cce"

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want *bitrix.Event
	}{
		{
			name: "lead add from the wire",
			body: leadAddBody,
			want: &bitrix.Event{
				Name: "ONCRMLEADADD", HandlerID: "58", TS: 1727018926,
				Data: map[string]string{"FIELDS[ID]": "134806"},
				Auth: bitrix.EventAuth{
					AccessToken: "be45f066", Expires: 1727022526, ExpiresIn: 3600,
					Scope: "crm,placement,user_brief", Domain: "example.bitrix24.com",
					ServerEndpoint: "https://oauth.bitrix.info/rest/", Status: "L",
					ClientEndpoint: "https://example.bitrix24.com/rest/",
					MemberID:       "010b6886ebc205e43ae65000ee00addb", UserID: 1,
					ApplicationToken: "51856fefc120afa4b628cc82d3935cce",
				},
			},
		},
		{
			name: "uninstall without tokens, lower-case name",
			body: "event=onAppUninstall&data[LANGUAGE_ID]=de&data[CLEAN]=1&ts=1466439714" +
				"&auth[member_id]=m1&auth[application_token]=t1&auth[domain]=d.example",
			want: &bitrix.Event{
				Name: "ONAPPUNINSTALL", TS: 1466439714,
				Data: map[string]string{"LANGUAGE_ID": "de", "CLEAN": "1"},
				Auth: bitrix.EventAuth{MemberID: "m1", ApplicationToken: "t1", Domain: "d.example"},
			},
		},
		{
			name: "unknown keys ignored, repeated equal value accepted",
			body: "event=ONCRMLEADUPDATE&x=1&auth[member_id]=m&auth[member_id]=m&auth[new_field]=z" +
				"&data[FIELDS][ID]=7",
			want: &bitrix.Event{
				Name: "ONCRMLEADUPDATE",
				Data: map[string]string{"FIELDS[ID]": "7"},
				Auth: bitrix.EventAuth{MemberID: "m"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form, err := url.ParseQuery(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := bitrix.ParseEvent(form)
			if err != nil {
				t.Fatalf("ParseEvent() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseEvent() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseEventMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		mention string // the error names what is wrong
	}{
		{name: "empty", body: "", mention: "no event name"},
		{name: "no member", body: "event=ONCRMLEADADD&data[FIELDS][ID]=1", mention: "member_id"},
		{name: "unbalanced", body: "event=X&auth[member_id]=m&data[FIELDS=1", mention: "unbalanced"},
		{name: "nested bracket", body: "event=X&auth[member_id]=m&data[a[b]]=1", mention: "unbalanced"},
		{name: "stray bracket", body: "event=X&auth[member_id]=m&data]=1", mention: "stray"},
		{name: "no root", body: "event=X&auth[member_id]=m&[x]=1", mention: "no name"},
		{name: "bad ts", body: "event=X&auth[member_id]=m&ts=yesterday", mention: "ts"},
		{name: "bad user", body: "event=X&auth[member_id]=m&auth[user_id]=one", mention: "user_id"},
		{name: "deep auth", body: "event=X&auth[member_id][x]=m", mention: "one level"},
		{name: "event array", body: "event[]=X&auth[member_id]=m", mention: "plain field"},
		{name: "conflict", body: "event=X&auth[member_id]=a&auth[member_id]=b", mention: "different"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			form, err := url.ParseQuery(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := bitrix.ParseEvent(form)
			if !errors.Is(err, bitrix.ErrMalformedEvent) {
				t.Fatalf("ParseEvent() = %+v, %v; want ErrMalformedEvent", ev, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("ParseEvent() error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestEventLeadID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		data   map[string]string
		want   int64
		wantOK bool
	}{
		{name: "present", data: map[string]string{"FIELDS[ID]": "42"}, want: 42, wantOK: true},
		{name: "absent", data: map[string]string{}},
		{name: "not a number", data: map[string]string{"FIELDS[ID]": "x"}},
		{name: "zero", data: map[string]string{"FIELDS[ID]": "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := &bitrix.Event{Data: tt.data}
			got, ok := ev.LeadID()
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Errorf("LeadID() = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
