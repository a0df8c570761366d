package assets

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Dict holds one language's user-visible texts by key.
type Dict map[string]string

// T returns the text for key, or the key itself when the language has none, so a
// missing translation shows up on the page instead of an empty space.
func (d Dict) T(key string) string {
	if s, ok := d[key]; ok {
		return s
	}
	return key
}

// Languages the pages are translated into; any other Bitrix24 language code gets
// English.
var languages = []string{"en", "ru"}

// Lang returns the supported language for a Bitrix24 language code (the LANG of a
// frame open): "ru" for Russian, "en" for everything else.
func Lang(code string) string {
	code = strings.ToLower(strings.TrimSpace(code))
	for _, l := range languages {
		if code == l {
			return l
		}
	}
	return "en"
}

// Dict returns the texts of lang (see Lang). Keys missing from a translation are
// taken from English.
func (a *Assets) Dict(lang string) Dict {
	return a.dicts[Lang(lang)]
}

func loadDicts() (map[string]Dict, error) {
	dicts := map[string]Dict{}
	for _, l := range languages {
		body, err := fs.ReadFile(files, path.Join("i18n", l+".json"))
		if err != nil {
			return nil, fmt.Errorf("read translation %s: %w", l, err)
		}
		var d Dict
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, fmt.Errorf("parse translation %s: %w", l, err)
		}
		dicts[l] = d
	}
	for _, l := range languages {
		for k, v := range dicts["en"] {
			if _, ok := dicts[l][k]; !ok {
				dicts[l][k] = v
			}
		}
	}
	return dicts, nil
}
