package bitrixtest

import (
	"net/http"
)

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("fake Bitrix24\n"))
}

func (s *Server) servePortalPage(w http.ResponseWriter, r *http.Request, p *Portal, tail string) {
	http.NotFound(w, r)
}
