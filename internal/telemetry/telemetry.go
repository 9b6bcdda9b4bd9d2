// Package telemetry holds what an operator watches fieldcrm with: one
// Prometheus registry per application (never the global default one), the
// instruments of every part that reports to it, and OpenTelemetry tracing
// (off unless an OTLP endpoint is configured).
//
// The packages that do the work do not import Prometheus: each declares the
// small interface it reports through (notify.Metrics, imports.Metrics,
// store.CallObserver, cursor.LagObserver), and the types here implement
// them. The HTTP layer (package api) registers its own series in the same
// registry.
package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry is one application's metrics and tracer.
type Telemetry struct {
	// Registry holds every series of the application: the Go runtime and
	// process collectors, and those of the parts below.
	Registry *prometheus.Registry
	// Tracer makes the spans of requests, database calls and pushes (a
	// no-op tracer when tracing is off).
	Tracer trace.Tracer

	Reminders *Reminders
	Imports   *Imports
	Jobs      *Jobs
	Database  *Calls
	Redis     *Calls
	SyncLag   *SyncLag
}

// latencyBuckets suit calls from a fraction of a millisecond (a Redis
// command) to seconds (a large pull's query).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New builds the registry and every instrument in it. tracer may be nil
// (tracing off).
func New(tracer trace.Tracer) *Telemetry {
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("fieldcrm")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Telemetry{
		Registry:  reg,
		Tracer:    tracer,
		Reminders: newReminders(reg, tracer),
		Imports:   newImports(reg),
		Jobs:      newJobs(reg),
		Database: newCalls(reg, tracer, "db", prometheus.HistogramOpts{
			Name:    "fieldcrm_db_call_duration_seconds",
			Help:    "Database calls by operation (the MongoDB command, or the embedded engine's direct read or write by _id), in seconds.",
			Buckets: latencyBuckets,
		}),
		Redis: newCalls(reg, nil, "redis", prometheus.HistogramOpts{
			Name:    "fieldcrm_redis_call_duration_seconds",
			Help:    "Redis calls by command (a pipeline counts as one call, operation pipeline), in seconds.",
			Buckets: latencyBuckets,
		}),
		SyncLag: newSyncLag(reg),
	}
}

// Gauge registers a gauge whose value read asks for at each scrape; it is
// how a number another part keeps (a queue's length) becomes a series.
func (t *Telemetry) Gauge(name, help string, read func() float64) {
	t.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read))
}

// Calls times the calls of one kind of server (the database, Redis) by
// operation, and traces them when a tracer is set.
type Calls struct {
	duration *prometheus.HistogramVec
	tracer   trace.Tracer
	system   string
}

func newCalls(reg prometheus.Registerer, tracer trace.Tracer, system string, opts prometheus.HistogramOpts) *Calls {
	c := &Calls{duration: prometheus.NewHistogramVec(opts, []string{"operation"}), tracer: tracer, system: system}
	reg.MustRegister(c.duration)
	return c
}

// Call starts timing (and, with a tracer, a span named system and
// operation, a child of ctx's span); the function it returns ends both.
// operation must come from a bounded set: a command's name, never an id.
func (c *Calls) Call(ctx context.Context, operation string) (context.Context, func(error)) {
	start := time.Now()
	var span trace.Span
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, c.system+" "+operation, trace.WithSpanKind(trace.SpanKindClient))
	}
	return ctx, func(err error) {
		c.duration.WithLabelValues(operation).Observe(time.Since(start).Seconds())
		if span != nil {
			if err != nil {
				span.RecordError(err)
			}
			span.End()
		}
	}
}

// SyncLag observes how far a tenant's sync watermark (what pulls may read up
// to) is below its newest sync number: the numbers of writes still in
// flight. A lag that stays high means a write holds its number long (a slow
// or stuck write, or a replica that died holding one until its lease ends),
// and phones see nothing newer meanwhile.
type SyncLag struct{ lag prometheus.Histogram }

func newSyncLag(reg prometheus.Registerer) *SyncLag {
	l := &SyncLag{lag: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fieldcrm_sync_watermark_lag_changes",
		Help:    "At each pull, the tenant's newest sync number minus the watermark the pull may read up to (changes in flight).",
		Buckets: []float64{0, 1, 2, 5, 10, 25, 50, 100, 250, 1000},
	})}
	reg.MustRegister(l.lag)
	return l
}

// WatermarkLag implements cursor.LagObserver.
func (l *SyncLag) WatermarkLag(changes int64) { l.lag.Observe(float64(changes)) }
