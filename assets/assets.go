// Package assets holds the pages LeadRouter shows inside Bitrix24: the HTML
// templates, the stylesheet built on Bitrix24's design tokens, the page scripts and
// the translations, all embedded in the binary so that no build step is needed.
//
// Static files are served under a content hash (/assets/<hash>/<name>) with a
// long cache lifetime: a new build changes the hash, so a portal never runs an old
// script against a new API.
package assets

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed templates/*.html static/* i18n/*.json
var files embed.FS

// Prefix is the URL path under which static files are served.
const Prefix = "/assets/"

// Assets renders the embedded templates and serves the embedded static files.
// It is safe for concurrent use.
type Assets struct {
	pages  map[string]*template.Template
	urls   map[string]string // file name → hashed URL path
	static map[string]staticFile
	dicts  map[string]Dict
}

type staticFile struct {
	body        []byte
	contentType string
}

// New loads every embedded file. It fails only when the embedded files are broken,
// which a test catches before a release.
func New() (*Assets, error) {
	a := &Assets{
		pages:  map[string]*template.Template{},
		urls:   map[string]string{},
		static: map[string]staticFile{},
	}
	if err := a.loadStatic(); err != nil {
		return nil, err
	}
	dicts, err := loadDicts()
	if err != nil {
		return nil, err
	}
	a.dicts = dicts
	if err := a.loadPages(); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Assets) loadStatic() error {
	entries, err := fs.ReadDir(files, "static")
	if err != nil {
		return fmt.Errorf("read static files: %w", err)
	}
	for _, e := range entries {
		body, err := files.ReadFile("static/" + e.Name())
		if err != nil {
			return fmt.Errorf("read static file %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		urlPath := Prefix + hex.EncodeToString(sum[:6]) + "/" + e.Name()
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		a.urls[e.Name()] = urlPath
		a.static[urlPath] = staticFile{body: body, contentType: ctype}
	}
	return nil
}

// loadPages parses each page template together with the shared layout.
func (a *Assets) loadPages() error {
	funcs := template.FuncMap{"asset": a.URL}
	pages, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return fmt.Errorf("list templates: %w", err)
	}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", p)
		if err != nil {
			return fmt.Errorf("parse template %s: %w", name, err)
		}
		a.pages[name] = t
	}
	return nil
}

// URL returns the hashed URL path of the static file name, e.g.
// "/assets/3f2a9c1b07de/app.js". It panics on an unknown name: templates name
// their files literally, and a typo must fail the template tests.
func (a *Assets) URL(name string) string {
	u, ok := a.urls[name]
	if !ok {
		panic("assets: no static file " + name)
	}
	return u
}

// Render writes the page template name, executed with data, to w.
func (a *Assets) Render(w io.Writer, name string, data any) error {
	t, ok := a.pages[name]
	if !ok {
		return fmt.Errorf("render %s: no such page", name)
	}
	if err := t.ExecuteTemplate(w, "layout.html", data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return nil
}

// ServeHTTP serves a static file by its hashed path. Unknown paths, including an
// old hash of a file that has changed since, get a 404.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, ok := a.static[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(f.body)
}
