package main

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OpenTelemetry collector's OTLP/HTTP trace endpoint as
// far as an exporter sees it: POST /v1/traces with a protobuf
// ExportTraceServiceRequest, answered with an empty ExportTraceServiceResponse.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	names map[string]string // resource's service.name of each span, by span id
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	o := &otlpReceiver{names: map[string]string{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP receiver got %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, _ := io.ReadAll(body)
		var req collectorpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			t.Errorf("OTLP receiver: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, span := range ss.GetSpans() {
					o.spans = append(o.spans, span)
					o.names[hex.EncodeToString(span.GetSpanId())] = service
				}
			}
		}
		o.mu.Unlock()
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

func (o *otlpReceiver) received() []*tracepb.Span {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*tracepb.Span(nil), o.spans...)
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, a request makes a server span named
// by its route, with the database calls it made as child spans in the same
// trace; a push to FCM makes a span; and the spans reach the collector by
// the time serve has stopped (the provider is flushed on shutdown).
func TestRequestsAreTracedWithTheirDatabaseCalls(t *testing.T) {
	otlp := newOTLPReceiver(t)
	fcm := newBenchFCM()
	t.Cleanup(fcm.srv.Close)
	vars := isolatedVars(t, "tracing")
	vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.srv.URL
	vars["FCM_PROJECT_ID"], vars["FCM_ENDPOINT"] = "tracing", fcm.srv.URL
	p := startServe(t, vars)
	r := &replica{name: "tracing", base: p.base}
	admin := signup(t, r, "Traced Ltd", "ops@traced.test")["access_token"].(string)
	customer := crashCustomer(t, r, admin, "Traced Co")
	r.must(t, 200, "GET", "/v1/customers/"+customer, admin, nil)
	r.must(t, 200, "POST", "/v1/devices", admin, map[string]any{"device_id": "traced-phone", "fcm_token": "traced-token", "platform": "ios"})
	r.must(t, 201, "POST", "/v1/tasks", admin, map[string]any{"customer_id": customer, "title": "Call",
		"due_at": time.Now().Add(100 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	waitFor(t, "the reminder pushed", func() bool {
		fcm.mu.Lock()
		defer fcm.mu.Unlock()
		return len(fcm.got) > 0
	})
	p.stop(t)

	spans := otlp.received()
	var server *tracepb.Span
	for _, s := range spans {
		if s.GetKind() == tracepb.Span_SPAN_KIND_SERVER && s.GetName() == "GET /v1/customers/:id" {
			server = s
		}
	}
	if server == nil {
		var names []string
		for _, s := range spans {
			names = append(names, s.GetName())
		}
		t.Fatalf("no server span GET /v1/customers/:id among %d spans: %s", len(spans), strings.Join(names, ", "))
	}
	if got := otlp.names[hex.EncodeToString(server.GetSpanId())]; got != "fieldcrm" {
		t.Errorf("service.name %q, want fieldcrm", got)
	}
	children := 0
	for _, s := range spans {
		if bytes.Equal(s.GetParentSpanId(), server.GetSpanId()) {
			if !bytes.Equal(s.GetTraceId(), server.GetTraceId()) || !strings.HasPrefix(s.GetName(), "db ") || s.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("child span %q (kind %v) of the request: want a database call in the same trace", s.GetName(), s.GetKind())
			}
			children++
		}
	}
	if children == 0 {
		t.Errorf("the request's span has no database call under it")
	}
	if !slices.ContainsFunc(spans, func(s *tracepb.Span) bool {
		return s.GetName() == "push fcm" && s.GetKind() == tracepb.Span_SPAN_KIND_CLIENT
	}) {
		t.Errorf("no span of the push to FCM")
	}
}
