package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Reminders are the series of the reminder worker (it implements
// notify.Metrics).
type Reminders struct {
	lateness    *prometheus.HistogramVec
	sent        *prometheus.CounterVec
	failed      *prometheus.CounterVec
	escalations *prometheus.CounterVec
	digests     prometheus.Counter
	pushes      *prometheus.CounterVec
	pushTime    *prometheus.HistogramVec
	tracer      trace.Tracer
}

func newReminders(reg prometheus.Registerer, tracer trace.Tracer) *Reminders {
	r := &Reminders{
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldcrm_reminder_lateness_seconds",
			Help: "Seconds from a reminder's due time (the end of the recipient's quiet hours, when it fell in them) to its push, by kind.",
			// From "on time" to "an hour late": the worker looks every 100 ms,
			// and retries back off up to 10 minutes.
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"kind"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_reminders_sent_total", Help: "Reminders sent (to every device of the recipient, and the inbox), by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_reminders_failed_total", Help: "Reminders given up after the last attempt (the push provider kept asking to retry), by kind.",
		}, []string{"kind"}),
		escalations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_reminder_escalations_total", Help: "Escalations sent to a manager (overdue tasks, SLA breaches), by kind.",
		}, []string{"kind"}),
		digests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldcrm_reminder_digests_sent_total", Help: "Managers' daily digests sent.",
		}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_pushes_total",
			Help: "Pushes to one device, by provider and outcome: sent, invalid_token (the device is dropped), retried (the provider asked to retry later), failed.",
		}, []string{"provider", "outcome"}),
		pushTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldcrm_push_duration_seconds", Help: "Time the push provider took to answer one push, by provider.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
		tracer: tracer,
	}
	reg.MustRegister(r.lateness, r.sent, r.failed, r.escalations, r.digests, r.pushes, r.pushTime)
	return r
}

// Expect starts the series of provider and of kinds at 0, so that a rate or
// a ratio over them is 0 rather than missing before the first event.
func (r *Reminders) Expect(provider string, kinds []string) {
	for _, outcome := range []string{"sent", "invalid_token", "retried", "failed"} {
		r.pushes.WithLabelValues(provider, outcome)
	}
	for _, kind := range kinds {
		r.sent.WithLabelValues(kind)
		r.failed.WithLabelValues(kind)
		r.escalations.WithLabelValues(kind)
	}
}

// ReminderSent implements notify.Metrics.
func (r *Reminders) ReminderSent(kind string, lateness time.Duration) {
	r.sent.WithLabelValues(kind).Inc()
	r.lateness.WithLabelValues(kind).Observe(max(lateness.Seconds(), 0))
}

// ReminderFailed implements notify.Metrics.
func (r *Reminders) ReminderFailed(kind string) { r.failed.WithLabelValues(kind).Inc() }

// Escalated implements notify.Metrics.
func (r *Reminders) Escalated(kind string) { r.escalations.WithLabelValues(kind).Inc() }

// DigestSent implements notify.Metrics.
func (r *Reminders) DigestSent() { r.digests.Inc() }

// Push implements notify.Metrics: it times one push and traces it as a
// child of ctx's span.
func (r *Reminders) Push(ctx context.Context, provider string) (context.Context, func(outcome string)) {
	start := time.Now()
	ctx, span := r.tracer.Start(ctx, "push "+provider, trace.WithSpanKind(trace.SpanKindClient))
	return ctx, func(outcome string) {
		r.pushTime.WithLabelValues(provider).Observe(time.Since(start).Seconds())
		r.pushes.WithLabelValues(provider, outcome).Inc()
		span.SetAttributes(attribute.String("fieldcrm.push.outcome", outcome))
		span.End()
	}
}

// Imports are the series of spreadsheet imports (it implements
// imports.Metrics).
type Imports struct {
	running prometheus.Gauge
	rows    *prometheus.CounterVec
}

func newImports(reg prometheus.Registerer) *Imports {
	i := &Imports{
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fieldcrm_imports_in_progress", Help: "Imports running in this process.",
		}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_import_rows_total", Help: "Rows handled by imports that write (dry runs not counted), by what the file holds; rate() is rows per second.",
		}, []string{"kind"}),
	}
	reg.MustRegister(i.running, i.rows)
	return i
}

// Expect starts the row counters of kinds at 0 (see Reminders.Expect).
func (i *Imports) Expect(kinds []string) {
	for _, kind := range kinds {
		i.rows.WithLabelValues(kind)
	}
}

// ImportStarted implements imports.Metrics.
func (i *Imports) ImportStarted() (ended func()) {
	i.running.Inc()
	return i.running.Dec
}

// RowsImported implements imports.Metrics.
func (i *Imports) RowsImported(kind string, n int) { i.rows.WithLabelValues(kind).Add(float64(n)) }

// Jobs are the series of the periodic jobs of a worker process.
type Jobs struct {
	lastSuccess *prometheus.GaugeVec
	period      *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	failures    *prometheus.CounterVec
}

func newJobs(reg prometheus.Registerer) *Jobs {
	j := &Jobs{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldcrm_job_last_success_timestamp_seconds",
			Help: "When this process last ran the job to its end without an error (unix seconds). Replicas take turns: take the max over them.",
		}, []string{"job"}),
		period: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldcrm_job_period_seconds", Help: "How often the job is meant to run, in seconds.",
		}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldcrm_job_duration_seconds", Help: "How long each run of the job took, failed runs included.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"job"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldcrm_job_failures_total", Help: "Runs of the job that ended with an error.",
		}, []string{"job"}),
	}
	reg.MustRegister(j.lastSuccess, j.period, j.duration, j.failures)
	return j
}

// Scheduled says job runs every period; its failure counter starts at 0,
// so an alert on its rate sees the series before the first failure.
func (j *Jobs) Scheduled(job string, period time.Duration) {
	j.period.WithLabelValues(job).Set(period.Seconds())
	j.failures.WithLabelValues(job)
}

// Ran records one run of job that ended at end after took.
func (j *Jobs) Ran(job string, end time.Time, took time.Duration, err error) {
	j.duration.WithLabelValues(job).Observe(took.Seconds())
	if err != nil {
		j.failures.WithLabelValues(job).Inc()
		return
	}
	j.lastSuccess.WithLabelValues(job).Set(float64(end.UnixNano()) / 1e9)
}
