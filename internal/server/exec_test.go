package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestStatusWriterAllowsFullDuplex: every API handler gets a statusWriter
// (instrument); exec streams stdin while it answers, which an HTTP/1.1
// connection allows only once EnableFullDuplex reached the real writer.
func TestStatusWriterAllowsFullDuplex(t *testing.T) {
	errs := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		errs <- http.NewResponseController(&statusWriter{ResponseWriter: w}).EnableFullDuplex()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-errs; err != nil {
		t.Fatalf("EnableFullDuplex through statusWriter: %v", err)
	}
}
