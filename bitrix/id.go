package bitrix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ID is a Bitrix24 entity ID. Legacy methods send IDs as strings ("5"), newer
// ones as numbers (5); ID reads both, reads null and "" as zero, and is written
// as a number.
type ID int64

// UnmarshalJSON reads a number, a string holding a number, "" or null.
func (id *ID) UnmarshalJSON(b []byte) error {
	s, err := scalar(b)
	if err != nil {
		return fmt.Errorf("read id: %w", err)
	}
	v, err := ParseID(s)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// String returns the decimal form of id, as the portal writes it in legacy fields.
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }

// ParseID reads an ID from a legacy string field; "" reads as zero.
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read id %q: not an integer", s)
	}
	return ID(n), nil
}

// Text is a scalar field read as text whatever JSON type the portal chose:
// strings stay as they are, numbers keep their digits, true and false become
// "Y" and "N" as in legacy fields, and null becomes "".
type Text string

// UnmarshalJSON reads a string, number, boolean or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	s, err := scalar(b)
	if err != nil {
		return fmt.Errorf("read text field: %w", err)
	}
	*t = Text(s)
	return nil
}

// Bool is a flag field: legacy methods send "Y"/"N", newer ones true/false,
// and some "1"/"0" or 1/0. null and "" read as false.
type Bool bool

// UnmarshalJSON reads any of the flag encodings the portal uses.
func (f *Bool) UnmarshalJSON(b []byte) error {
	s, err := scalar(b)
	if err != nil {
		return fmt.Errorf("read flag: %w", err)
	}
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "Y", "1", "TRUE":
		*f = true
	case "N", "0", "FALSE", "":
		*f = false
	default:
		return fmt.Errorf("read flag %q: not Y/N, true/false or 1/0", s)
	}
	return nil
}

// scalar returns the text of a JSON string, number, boolean or null; booleans
// come back as "Y" and "N".
func scalar(b []byte) (string, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("empty value")
	case bytes.Equal(b, []byte("null")):
		return "", nil
	case bytes.Equal(b, []byte("true")):
		return "Y", nil
	case bytes.Equal(b, []byte("false")):
		return "N", nil
	case b[0] == '"':
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		err := json.Unmarshal(b, &n)
		return n.String(), err
	}
	return "", fmt.Errorf("want a string, number, boolean or null, got %.20s", b)
}
