package api_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"
)

// TestLargeResponsesAreCompressedForClientsThatAcceptGzip: a pull, a whole
// first sync, a list and a streamed export come gzip-compressed to a client
// that accepts it and decompress to exactly what a client that does not gets;
// tiny answers and XLSX exports stay as they are.
func TestLargeResponsesAreCompressedForClientsThatAcceptGzip(t *testing.T) {
	w := newWorld(t)
	h := w.h
	for i := range 30 {
		h.newCustomer(w.r1, map[string]any{"name": fmt.Sprintf("Compressible customer %d", i), "kind": "company", "stage": "lead"})
	}
	for _, path := range []string{"/v1/sync/pull?last_pulled_at=null", "/v1/sync/pull?last_pulled_at=null&turbo=true",
		"/v1/customers?limit=50", "/v1/exports/customers?format=csv"} {
		plain := h.do("GET", path, w.r1.access, nil)
		h.expect(plain, 200, path)
		if enc := plain.header.Get("Content-Encoding"); enc != "" {
			t.Fatalf("%s without Accept-Encoding: Content-Encoding %q", path, enc)
		}
		zipped := h.do("GET", path, w.r1.access, nil, "Accept-Encoding", "gzip")
		h.expect(zipped, 200, path+" gzip")
		if enc := zipped.header.Get("Content-Encoding"); enc != "gzip" {
			t.Fatalf("%s with Accept-Encoding gzip: Content-Encoding %q", path, enc)
		}
		zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
		if err != nil {
			t.Fatalf("%s: not gzip: %v", path, err)
		}
		body, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !bytes.Equal(body, plain.body) {
			t.Fatalf("%s: the decompressed body differs from the plain one:\n%s\n---\n%s", path, body, plain.body)
		}
		if len(zipped.body)*2 > len(plain.body) {
			t.Fatalf("%s: %d bytes compressed from %d", path, len(zipped.body), len(plain.body))
		}
	}
	// An XLSX export is a zip: never wrapped in gzip.
	xlsx := h.do("GET", "/v1/exports/customers?format=xlsx", w.r1.access, nil, "Accept-Encoding", "gzip")
	h.expect(xlsx, 200, "xlsx export")
	if enc := xlsx.header.Get("Content-Encoding"); enc != "" || !bytes.HasPrefix(xlsx.body, []byte("PK")) {
		t.Fatalf("XLSX export with Accept-Encoding gzip: Content-Encoding %q, body starts %q", enc, xlsx.body[:min(4, len(xlsx.body))])
	}
	small := h.do("GET", "/healthz", "", nil, "Accept-Encoding", "gzip")
	if enc := small.header.Get("Content-Encoding"); enc != "" {
		t.Fatalf("/healthz: Content-Encoding %q", enc)
	}
}
