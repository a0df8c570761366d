package intake

import (
	"bytes"
	"errors"
	"mime/multipart"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseShapes(t *testing.T) {
	t.Parallel()
	want := Lead{
		Name: "Anna", LastName: "Petrova",
		Phones:   []Contact{{Value: "+7 (912) 345-67-89", Type: "WORK"}},
		Emails:   []Contact{{Value: "anna@example.com", Type: "WORK"}},
		Comments: "Call after 5",
		UTM:      map[string]string{"UTM_SOURCE": "google", "UTM_CAMPAIGN": "spring"},
		Amount:   "1500.5", Currency: "EUR",
		Custom: map[string]any{"UF_CRM_BUDGET": "big"},
	}
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{
			name:        "flat JSON",
			contentType: "application/json",
			body: `{"first_name":"Anna","last_name":"Petrova","phone":"+7 (912) 345-67-89",
				"email":"anna@example.com","message":"Call after 5","utm_source":"google",
				"utm_campaign":"spring","amount":1500.50,"currency":"eur",
				"UF_CRM_BUDGET":"big"}`,
		},
		{
			name:        "JSON sent as text/plain",
			contentType: "text/plain;charset=UTF-8",
			body: `{"name":"Anna","last_name":"Petrova","phone":"+7 (912) 345-67-89",
				"email":"anna@example.com","comments":"Call after 5","UTM_SOURCE":"google",
				"utm_campaign":"spring","opportunity":"1 500,50","currency_id":"EUR",
				"uf_crm_budget":"big"}`,
		},
		{
			name:        "Bitrix24 JSON",
			contentType: "application/json; charset=utf-8",
			body: `{"fields":{"NAME":"Anna","LAST_NAME":"Petrova",
				"PHONE":[{"VALUE":"+7 (912) 345-67-89","VALUE_TYPE":"WORK"}],
				"EMAIL":[{"VALUE":"anna@example.com"}],"COMMENTS":"Call after 5",
				"UTM_SOURCE":"google","UTM_CAMPAIGN":"spring","OPPORTUNITY":"1500.50",
				"CURRENCY_ID":"EUR","UF_CRM_BUDGET":"big"}}`,
		},
		{
			name:        "flat form",
			contentType: "application/x-www-form-urlencoded",
			body: "Name=Anna&last_name=Petrova&Phone=%2B7+(912)+345-67-89&Email=anna%40example.com" +
				"&comment=Call+after+5&utm_source=google&utm_campaign=spring&amount=1500%2C50" +
				"&currency=EUR&uf_crm_budget=big",
		},
		{
			name:        "Bitrix24 form",
			contentType: "application/x-www-form-urlencoded",
			body: "fields[NAME]=Anna&fields[LAST_NAME]=Petrova" +
				"&fields[PHONE][0][VALUE]=%2B7+(912)+345-67-89&fields[PHONE][0][VALUE_TYPE]=WORK" +
				"&fields[EMAIL][0][VALUE]=anna%40example.com&fields[COMMENTS]=Call+after+5" +
				"&fields[UTM_SOURCE]=google&fields[UTM_CAMPAIGN]=spring" +
				"&fields[OPPORTUNITY]=1500.50&fields[CURRENCY_ID]=EUR&fields[UF_CRM_BUDGET]=big",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			post, err := Parse(tt.contentType, []byte(tt.body))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(want, post.Lead, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Parse() lead mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMultipart(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("name", "Ivan")
	w.WriteField("phone", "89123456789")
	w.WriteField("phone", "+7 912 000 11 22")
	w.WriteField("formid", "form123")
	w.WriteField("secret", "s3")
	fw, _ := w.CreateFormFile("cv", "cv.pdf")
	fw.Write([]byte("%PDF"))
	w.Close()
	post, err := Parse(w.FormDataContentType(), buf.Bytes())
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	want := &Post{
		Lead: Lead{Name: "Ivan", Phones: []Contact{
			{Value: "89123456789", Type: "WORK"}, {Value: "+7 912 000 11 22", Type: "WORK"}}},
		Secret:  "s3",
		Ignored: []string{"formid"},
	}
	if diff := cmp.Diff(want, post, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseControls(t *testing.T) {
	t.Parallel()
	post, err := Parse("application/json", []byte(`{"email":"a@b.co","responsible":"7",
		"idempotency_key":"order-1","secret":"x","tranid":"123"}`))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	if post.Lead.Responsible != 7 || post.IdempotencyKey != "order-1" || post.Secret != "x" {
		t.Errorf("Parse() = responsible %d, key %q, secret %q; want 7, order-1, x",
			post.Lead.Responsible, post.IdempotencyKey, post.Secret)
	}
	if diff := cmp.Diff([]string{"tranid"}, post.Ignored); diff != "" {
		t.Errorf("Parse() ignored mismatch (-want +got):\n%s", diff)
	}
	post, err = Parse("application/json", []byte(`{"fields":{"EMAIL":"a@b.co","ASSIGNED_BY_ID":9}}`))
	if err != nil || post.Lead.Responsible != 9 {
		t.Errorf("Parse(ASSIGNED_BY_ID) = %+v, %v; want responsible 9", post, err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		want        FieldErrors
	}{
		{"no contact", "application/json", `{"comment":"hi"}`,
			FieldErrors{"contact": "at least one of name, phone, email is required"}},
		{"bad phone", "application/json", `{"phone":"call me"}`,
			FieldErrors{"phone": "not a phone number"}},
		{"short phone", "application/x-www-form-urlencoded", "phone=123",
			FieldErrors{"phone": "not a phone number"}},
		{"bad email", "application/json", `{"name":"A","email":"anna at example"}`,
			FieldErrors{"email": "not an e-mail address"}},
		{"email with display name", "application/json", `{"email":"Anna <a@b.co>"}`,
			FieldErrors{"email": "not an e-mail address"}},
		{"bad amount", "application/json", `{"name":"A","amount":"lots"}`,
			FieldErrors{"amount": "not an amount (like 1500.50)"}},
		{"negative amount", "application/json", `{"name":"A","amount":-5}`,
			FieldErrors{"amount": "not an amount (like 1500.50)"}},
		{"bad currency", "application/json", `{"name":"A","currency":"euro"}`,
			FieldErrors{"currency": "not a currency code (like USD)"}},
		{"bad responsible", "application/json", `{"name":"A","responsible":"boss"}`,
			FieldErrors{"responsible": "not a user ID"}},
		{"name twice", "application/json", `{"name":"A","first_name":"B"}`, nil},
		{"object as name", "application/json", `{"name":{"x":1}}`,
			FieldErrors{"name": "not a single text value"}},
		{"fields not object", "application/json", `{"fields":"x","name":"A"}`,
			FieldErrors{"fields": "not an object of lead fields"}},
		{"bad custom code", "application/json", `{"name":"A","UF_CRM_":"x"}`,
			FieldErrors{"UF_CRM_": "not a custom field code (like UF_CRM_1700000000)"}},
		{"bitrix bad phone", "application/json", `{"fields":{"PHONE":[{"VALUE":"x"}]}}`,
			FieldErrors{"fields.PHONE": "not a phone number"}},
		{"truncated JSON", "application/json", `{"name":"A"`,
			FieldErrors{"body": "not a JSON object: the body ended early"}},
		{"JSON array", "application/json", `[1,2]`,
			FieldErrors{"body": "not a JSON object: the body is a JSON array"}},
		{"JSON syntax", "application/json", `{"name" "A"}`,
			FieldErrors{"body": "not a JSON object: syntax error at byte 9"}},
		{"two objects", "application/json", `{"name":"A"}{}`,
			FieldErrors{"body": "not a JSON object: data after the object"}},
		{"bad bracket", "application/x-www-form-urlencoded", "fields[NAME=A",
			FieldErrors{"fields[NAME": "not a form field name"}},
		{"value and object", "application/x-www-form-urlencoded", "fields=x&fields[NAME]=A",
			FieldErrors{"fields[NAME]": "given both as a value and as an object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			post, err := Parse(tt.contentType, []byte(tt.body))
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("Parse() = %+v, %v; want FieldErrors", post, err)
			}
			if tt.want == nil {
				return // only that it fails; the message names whichever came second
			}
			if diff := cmp.Diff(tt.want, fe); diff != "" {
				t.Errorf("Parse() errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUnsupportedType(t *testing.T) {
	t.Parallel()
	_, err := Parse("text/xml", []byte("<lead/>"))
	if !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("Parse(text/xml) error = %v, want ErrUnsupportedType", err)
	}
}

func TestLeadFields(t *testing.T) {
	t.Parallel()
	src := &Source{ID: "abc", Name: "Spring landing", Options: Options{CRMSource: "WEB"}}
	lead := Lead{Name: "Anna", Phones: []Contact{{Value: "+79123456789", Type: "MOBILE"}},
		UTM: map[string]string{"UTM_SOURCE": "google"}, Amount: "10",
		Custom: map[string]any{"UF_CRM_TAGS": []string{"a", "b"}}}
	got := lead.Fields(src, 5)
	want := map[string]any{
		"TITLE": "Spring landing: Anna", "SOURCE_ID": "WEB", "NAME": "Anna",
		"SOURCE_DESCRIPTION": "Spring landing",
		"PHONE":              []map[string]string{{"VALUE": "+79123456789", "VALUE_TYPE": "MOBILE"}},
		"UTM_SOURCE":         "google", "OPPORTUNITY": "10", "ASSIGNED_BY_ID": int64(5),
		"UF_CRM_TAGS": []string{"a", "b"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Fields() mismatch (-want +got):\n%s", diff)
	}
}
