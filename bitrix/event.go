package bitrix

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Event names LeadRouter receives. The portal sends them in upper case.
const (
	EventAppInstall   = "ONAPPINSTALL"
	EventAppUpdate    = "ONAPPUPDATE"
	EventAppUninstall = "ONAPPUNINSTALL"
	EventLeadAdd      = "ONCRMLEADADD"
	EventLeadUpdate   = "ONCRMLEADUPDATE"
	EventLeadDelete   = "ONCRMLEADDELETE"
	EventOffline      = "ONOFFLINEEVENT"
)

// ErrMalformedEvent is wrapped by every error ParseEvent returns.
var ErrMalformedEvent = errors.New("malformed event")

// Event is one event the portal POSTed to the application's handler.
type Event struct {
	// Name is the event's name in upper case, e.g. "ONCRMLEADADD".
	Name string
	// HandlerID is event_handler_id: the portal's ID of the binding, "" when absent.
	HandlerID string
	// TS is the Unix time the portal's queue sent the event, 0 when absent.
	TS int64
	// Data holds the data[...] fields with the outer "data" removed and the inner
	// brackets kept: data[FIELDS][ID]=5 is Data["FIELDS[ID]"] = "5".
	Data map[string]string
	// Auth is the auth[...] part.
	Auth EventAuth
}

// EventAuth is the auth[...] part of an event. CRM events may come without any
// token (changes made by automation); only MemberID and ApplicationToken are always
// expected.
type EventAuth struct {
	AccessToken      string
	RefreshToken     string
	Expires          int64 // Unix time the access token expires, 0 when absent
	ExpiresIn        int64 // seconds, 0 when absent
	Scope            string
	Domain           string
	ServerEndpoint   string
	ClientEndpoint   string
	Status           string
	MemberID         string
	UserID           int64
	ApplicationToken string
}

// LeadID returns the ID of the CRM item the event concerns (data[FIELDS][ID]) and
// reports whether the event carries a valid positive one.
func (e *Event) LeadID() (int64, bool) {
	id, err := strconv.ParseInt(e.Data["FIELDS[ID]"], 10, 64)
	return id, err == nil && id > 0
}

// ParseEvent parses the form the portal POSTs to an event handler: PHP-style
// bracket keys (data[FIELDS][ID], auth[member_id]), as Bitrix24 sends them. It needs
// an event name and auth[member_id]; every error wraps ErrMalformedEvent and names
// the offending key. Keys outside event, event_handler_id, ts, data and auth are
// ignored.
func ParseEvent(form url.Values) (*Event, error) {
	ev := &Event{Data: map[string]string{}}
	for key, values := range form {
		root, path, err := splitKey(key)
		if err != nil {
			return nil, err
		}
		value, err := single(key, values)
		if err != nil {
			return nil, err
		}
		if err := ev.set(root, path, value); err != nil {
			return nil, err
		}
	}
	if ev.Name == "" {
		return nil, fmt.Errorf("%w: no event name", ErrMalformedEvent)
	}
	if ev.Auth.MemberID == "" {
		return nil, fmt.Errorf("%w: no auth[member_id]", ErrMalformedEvent)
	}
	return ev, nil
}

// set stores one decoded form field.
func (e *Event) set(root string, path []string, value string) error {
	switch root {
	case "event":
		if err := noPath(root, path); err != nil {
			return err
		}
		e.Name = strings.ToUpper(strings.TrimSpace(value))
	case "event_handler_id":
		if err := noPath(root, path); err != nil {
			return err
		}
		e.HandlerID = value
	case "ts":
		if err := noPath(root, path); err != nil {
			return err
		}
		ts, err := parseInt("ts", value)
		if err != nil {
			return err
		}
		e.TS = ts
	case "data":
		if len(path) == 0 {
			// data without fields: the portal sends an empty data for some events.
			return nil
		}
		k := path[0]
		for _, p := range path[1:] {
			k += "[" + p + "]"
		}
		e.Data[k] = value
	case "auth":
		return e.Auth.set(path, value)
	}
	return nil
}

// set stores one auth[...] field. Unknown auth fields are ignored.
func (a *EventAuth) set(path []string, value string) error {
	if len(path) != 1 {
		return fmt.Errorf("%w: auth must be one level deep, got auth[%s]",
			ErrMalformedEvent, strings.Join(path, "]["))
	}
	var err error
	switch path[0] {
	case "access_token":
		a.AccessToken = value
	case "refresh_token":
		a.RefreshToken = value
	case "expires":
		a.Expires, err = parseInt("auth[expires]", value)
	case "expires_in":
		a.ExpiresIn, err = parseInt("auth[expires_in]", value)
	case "scope":
		a.Scope = value
	case "domain":
		a.Domain = value
	case "server_endpoint":
		a.ServerEndpoint = value
	case "client_endpoint":
		a.ClientEndpoint = value
	case "status":
		a.Status = value
	case "member_id":
		a.MemberID = value
	case "user_id":
		a.UserID, err = parseInt("auth[user_id]", value)
	case "application_token":
		a.ApplicationToken = value
	}
	return err
}

// splitKey splits a PHP bracket key: "data[FIELDS][ID]" is "data", [FIELDS ID].
func splitKey(key string) (root string, path []string, err error) {
	open := strings.IndexByte(key, '[')
	if open < 0 {
		if strings.IndexByte(key, ']') >= 0 {
			return "", nil, fmt.Errorf("%w: stray bracket in key %q", ErrMalformedEvent, key)
		}
		return key, nil, nil
	}
	root, rest := key[:open], key[open:]
	if root == "" {
		return "", nil, fmt.Errorf("%w: key %q has no name before its brackets", ErrMalformedEvent, key)
	}
	for rest != "" {
		if rest[0] != '[' {
			return "", nil, fmt.Errorf("%w: unbalanced brackets in key %q", ErrMalformedEvent, key)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", nil, fmt.Errorf("%w: unbalanced brackets in key %q", ErrMalformedEvent, key)
		}
		part := rest[1:end]
		if strings.IndexByte(part, '[') >= 0 {
			return "", nil, fmt.Errorf("%w: unbalanced brackets in key %q", ErrMalformedEvent, key)
		}
		path = append(path, part)
		rest = rest[end+1:]
	}
	return root, path, nil
}

// single returns a field's value, refusing a field sent twice with different values.
func single(key string, values []string) (string, error) {
	for _, v := range values[1:] {
		if v != values[0] {
			return "", fmt.Errorf("%w: key %q sent %d times with different values",
				ErrMalformedEvent, key, len(values))
		}
	}
	return values[0], nil
}

func noPath(root string, path []string) error {
	if len(path) > 0 {
		return fmt.Errorf("%w: %s must be a plain field", ErrMalformedEvent, root)
	}
	return nil
}

func parseInt(name, value string) (int64, error) {
	if value == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not an integer", ErrMalformedEvent, name)
	}
	return n, nil
}
