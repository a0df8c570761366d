package main

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/leadrouter/leadrouter/bitrix/bitrixtest"
	"github.com/leadrouter/leadrouter/routing"
)

// sampleCompany is the sandbox portal: a sales company of a dozen people in three
// departments, some absent, some clocked out, one dismissed, with a custom lead
// field for the client's region.
func sampleCompany() bitrixtest.PortalOptions {
	away := time.Now().Add(4 * 24 * time.Hour)
	return bitrixtest.PortalOptions{
		Name: "sandbox",
		Departments: []bitrixtest.Department{
			{ID: 2, Name: "Sales", Head: 2},
			{ID: 3, Name: "Key accounts", Parent: 2, Head: 7},
			{ID: 4, Name: "Customer care", Head: 11},
		},
		Users: []bitrixtest.User{
			{ID: 1, Name: "Anna", LastName: "Sokolova", Email: "anna@example.com", Admin: true,
				Timeman: "OPENED", TimeZone: "Europe/Berlin"},
			{ID: 2, Name: "Boris", LastName: "Petrov", Department: 2, Timeman: "OPENED",
				TimeZone: "Europe/Moscow"},
			{ID: 3, Name: "Clara", LastName: "Schmidt", Department: 2, Timeman: "PAUSED",
				TimeZone: "Europe/Berlin"},
			{ID: 4, Name: "Dmitri", LastName: "Ivanov", Department: 2, Timeman: "OPENED",
				AbsentUntil: away, TimeZone: "Europe/Moscow"},
			{ID: 5, Name: "Elena", LastName: "Kuznetsova", Department: 2, Timeman: "OPENED",
				TimeZone: "Europe/Moscow"},
			{ID: 6, Name: "Fyodor", LastName: "Smirnov", Department: 2, Timeman: "CLOSED",
				TimeZone: "Asia/Almaty"},
			{ID: 7, Name: "Grace", LastName: "Miller", Department: 3, Timeman: "OPENED",
				TimeZone: "Europe/London"},
			{ID: 8, Name: "Hugo", LastName: "Laurent", Department: 3, Timeman: "OPENED",
				TimeZone: "Europe/Paris"},
			{ID: 9, Name: "Irina", LastName: "Volkova", Department: 3, Timeman: "OPENED",
				TimeZone: "Europe/Moscow"},
			{ID: 10, Name: "Julia", LastName: "Weber", Department: 2, Dismissed: true},
			{ID: 11, Name: "Kirill", LastName: "Orlov", Department: 4, Timeman: "OPENED",
				TimeZone: "Asia/Almaty"},
			{ID: 12, Name: "Lena", LastName: "Fischer", Department: 4, Timeman: "OPENED",
				TimeZone: "Europe/Berlin"},
		},
		UserFields: []bitrixtest.UserField{
			{Code: "UF_CRM_REGION", Type: "string", Title: "Client region"},
		},
	}
}

// sampleSettings route the sandbox's leads: large deals and partners to key
// accounts in turn, Kazakhstan to customer care, everything else weighted across
// sales, where people must be clocked in.
func sampleSettings() *routing.Settings {
	return &routing.Settings{
		Scope: routing.Scope{Mode: routing.ScopeAll},
		Teams: []routing.Team{
			{ID: "sales", Name: "Sales", Strategy: routing.Weighted, RequireClockIn: true,
				Members: []routing.Member{
					{UserID: 2, Weight: 3, DailyCap: 40}, {UserID: 3, Weight: 2},
					{UserID: 4, Weight: 2}, {UserID: 5, Weight: 2}, {UserID: 6, Weight: 1},
					{UserID: 10, Weight: 1},
				},
				Fallback: routing.Target{Kind: routing.TargetTeam, Team: "care"}},
			{ID: "key", Name: "Key accounts", Strategy: routing.RoundRobin,
				Members: []routing.Member{{UserID: 7, DailyCap: 25}, {UserID: 8, DailyCap: 25},
					{UserID: 9, DailyCap: 25}},
				Fallback: routing.Target{Kind: routing.TargetTeam, Team: "sales"}},
			{ID: "care", Name: "Customer care", Strategy: routing.LeastLoaded,
				Members:  []routing.Member{{UserID: 11}, {UserID: 12}},
				Fallback: routing.Target{Kind: routing.TargetPerson, User: 1}},
		},
		Rules: []routing.Rule{
			{ID: "big-deals", Name: "Deals from 10,000", Conditions: []routing.Condition{
				{Field: "OPPORTUNITY", Op: routing.OpGreaterEq, Value: "10000"}},
				Target: routing.Target{Kind: routing.TargetTeam, Team: "key"}},
			{ID: "partners", Name: "Partners", Conditions: []routing.Condition{
				{Field: "SOURCE_ID", Op: routing.OpEquals, Value: "PARTNER"}},
				Target: routing.Target{Kind: routing.TargetTeam, Team: "key"}},
			{ID: "kazakhstan", Name: "Clients in Kazakhstan", Conditions: []routing.Condition{
				{Field: "UF_CRM_REGION", Op: routing.OpEquals, Value: "Kazakhstan"}},
				Target: routing.Target{Kind: routing.TargetTeam, Team: "care"}},
		},
		Default:        routing.Target{Kind: routing.TargetTeam, Team: "sales"},
		ExistingClient: routing.ExistingClient{Enabled: true},
	}
}

var (
	sampleFirst   = []string{"Olga", "Pavel", "Maria", "Sergei", "Tom", "Nina", "Ahmed", "Sofia", "Ivan", "Lucas"}
	sampleLast    = []string{"Morozova", "Kovalenko", "Brown", "Garcia", "Novikov", "Rossi", "Yilmaz", "Berg"}
	sampleSources = []string{"WEB", "WEB", "WEB", "CALL", "EMAIL", "WEBFORM", "ADVERTISING", "PARTNER"}
	sampleRegions = []string{"Germany", "Germany", "Russia", "Russia", "Kazakhstan", "France", "United Kingdom"}
	sampleWants   = []string{"Price request", "Demo request", "Callback", "Bulk order", "Question about delivery"}
	sampleUTM     = []string{"google", "yandex", "facebook", "newsletter", ""}
)

// sampleLead returns the fields of a plausible new lead.
func sampleLead(rng *rand.Rand) map[string]any {
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	first, last := pick(sampleFirst), pick(sampleLast)
	amount := []int{0, 500, 1200, 2500, 4800, 9000, 15000, 42000}[rng.IntN(8)]
	fields := map[string]any{
		"TITLE":          pick(sampleWants) + " — " + first + " " + last,
		"NAME":           first,
		"LAST_NAME":      last,
		"SOURCE_ID":      pick(sampleSources),
		"STATUS_ID":      "NEW",
		"OPPORTUNITY":    strconv.Itoa(amount),
		"CURRENCY_ID":    "EUR",
		"UF_CRM_REGION":  pick(sampleRegions),
		"UTM_SOURCE":     pick(sampleUTM),
		"ASSIGNED_BY_ID": "1",
		"PHONE": []map[string]any{{"VALUE": "+49 30 " + strconv.Itoa(1000000+rng.IntN(8999999)),
			"VALUE_TYPE": "WORK"}},
		"EMAIL": []map[string]any{{"VALUE": first + "." + last + "@example.org", "VALUE_TYPE": "WORK"}},
	}
	return fields
}
