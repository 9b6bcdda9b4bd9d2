package telemetry

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingConfig says where spans go. With no Endpoint, tracing is off and
// costs nothing.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector's base URL
	// (OTEL_EXPORTER_OTLP_ENDPOINT, such as http://collector:4318): spans
	// are posted to its /v1/traces.
	Endpoint string
	// ServiceName names this service in the traces (default fieldcrm).
	ServiceName string
}

// CheckEndpoint says what is wrong with an OTLP endpoint, or nil.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT=%q: want the collector's OTLP/HTTP address, such as http://collector:4318", endpoint)
	}
	return nil
}

// StartTracing starts the tracer provider of cfg: spans are batched and
// posted as OTLP protobuf over HTTP. It returns a nil tracer when tracing is
// off. Call shutdown when the application stops: it sends the spans still
// batched.
func StartTracing(ctx context.Context, cfg TracingConfig, version string) (trace.Tracer, func(context.Context) error, error) {
	if cfg.Endpoint == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	if err := CheckEndpoint(cfg.Endpoint); err != nil {
		return nil, nil, err
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimRight(cfg.Endpoint, "/")+"/v1/traces"),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "fieldcrm"
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name), attribute.String("service.version", version))),
	)
	return provider.Tracer("github.com/fieldcrm/fieldcrm"), provider.Shutdown, nil
}
