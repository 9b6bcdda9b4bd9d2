package api

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Liveness and readiness, as the probes ask for them.
//
// /healthz (liveness) says the process should be left running: it answers
// HTTP and none of its watched loops (the reminder worker's) has gone
// without a turn for longer than its limit. A dependency never fails it:
// restarting every pod because the shared database is away only adds
// restarts to the outage.
//
// /readyz (readiness) says this process should be sent requests: it has
// started (the schema was checked when the application was built; Serve
// marks the start once the start-up work before it is done) and is not
// shutting down, which flips it at once. Each probe also pings the
// dependencies (MongoDB, Redis); a failing one is reported in the body and
// by fieldcrm_dependency_up, but makes the process unready only once it has
// failed for longer than Config.DependencyGrace, and never when that is
// zero (the default). Why: MongoDB and Redis are shared by every replica, so
// a failover or a blip fails every replica's check at the same moment;
// taking them all out of the Service turns a few seconds of 503 problem
// documents, which clients retry, into an API with no endpoints at all, and
// no replica elsewhere is better off. A grace suits a deployment where one
// replica can lose its own path to a dependency while others keep theirs.

// Readiness is the readiness decision and what it rests on.
type Readiness struct {
	Ready bool
	// Status is ok, degraded (a dependency fails; still ready), starting,
	// shutting down, or unavailable (a dependency failed past its grace).
	Status string
	// Checks are each dependency's answer: ok, or the error, with how long
	// it has failed.
	Checks map[string]string
}

// Readiness statuses.
const (
	StatusOK           = "ok"
	StatusDegraded     = "degraded"
	StatusStarting     = "starting"
	StatusShuttingDown = "shutting down"
	StatusUnavailable  = "unavailable"
)

// checkTimeout bounds one probe's pings of the dependencies.
const checkTimeout = 2 * time.Second

// lifecycle is what the probes know of the process: started, stopping,
// each dependency's failures and each watched loop's last turn.
type lifecycle struct {
	now      func() time.Time
	grace    time.Duration
	started  atomic.Bool
	stopping atomic.Bool
	up       *prometheus.GaugeVec

	mu        sync.Mutex
	downSince map[string]time.Time // dependencies failing now, since when
	loops     []watchedLoop
}

type watchedLoop struct {
	name       string
	lastTurn   func() time.Time
	stuckAfter time.Duration
}

func newLifecycle(reg prometheus.Registerer, now func() time.Time, grace time.Duration) *lifecycle {
	l := &lifecycle{now: now, grace: grace, downSince: map[string]time.Time{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fieldcrm_dependency_up",
			Help: "1 when the dependency (mongodb, redis) answered the last readiness probe, else 0.",
		}, []string{"dependency"})}
	reg.MustRegister(l.up)
	return l
}

// MarkStarted makes the process ready to be sent requests (dependencies
// permitting). Serve calls it; a caller that serves App() another way
// (tests through app.Test) calls it itself.
func (s *Server) MarkStarted() { s.life.started.Store(true) }

// MarkStopping makes the process unready at once, as Serve does when told to
// stop: for a process that serves no API (a worker), whose probes are on the
// metrics port alone.
func (s *Server) MarkStopping() { s.life.stopping.Store(true) }

// WatchLoop makes /healthz fail once lastTurn is more than stuckAfter ago:
// the loop is stuck and a restart is the cure. The loop reports a turn at
// least every few seconds when idle.
func (s *Server) WatchLoop(name string, lastTurn func() time.Time, stuckAfter time.Duration) {
	s.life.mu.Lock()
	defer s.life.mu.Unlock()
	s.life.loops = append(s.life.loops, watchedLoop{name: name, lastTurn: lastTurn, stuckAfter: stuckAfter})
}

// Readiness decides whether this process should be sent requests; /readyz
// answers it (200 when Ready, else 503) on every port that serves it.
func (s *Server) Readiness(ctx context.Context) Readiness {
	l := s.life
	switch {
	case l.stopping.Load():
		return Readiness{Status: StatusShuttingDown}
	case !l.started.Load():
		return Readiness{Status: StatusStarting}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	errs := make([]error, len(s.checks))
	var wg sync.WaitGroup
	for i, check := range s.checks {
		wg.Go(func() { errs[i] = check.Ping(ctx) })
	}
	wg.Wait()
	now := l.now()
	out := Readiness{Ready: true, Status: StatusOK, Checks: map[string]string{}}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, check := range s.checks {
		if errs[i] == nil {
			delete(l.downSince, check.Name)
			l.up.WithLabelValues(check.Name).Set(1)
			out.Checks[check.Name] = "ok"
			continue
		}
		l.up.WithLabelValues(check.Name).Set(0)
		since, ok := l.downSince[check.Name]
		if !ok {
			since = now
			l.downSince[check.Name] = now
		}
		down := now.Sub(since)
		out.Checks[check.Name] = fmt.Sprintf("error for %s: %v", down.Round(time.Second), errs[i])
		if out.Status == StatusOK {
			out.Status = StatusDegraded
		}
		if l.grace > 0 && down > l.grace {
			out.Ready, out.Status = false, StatusUnavailable
		}
	}
	return out
}

// Liveness says whether the process should be left running: every watched
// loop turned recently. It reports each loop.
func (s *Server) Liveness() (alive bool, loops map[string]string) {
	l := s.life
	l.mu.Lock()
	defer l.mu.Unlock()
	alive, loops = true, map[string]string{}
	if l.stopping.Load() {
		return true, nil // the loops are winding down, as told
	}
	for _, w := range l.loops {
		idle := time.Since(w.lastTurn())
		if idle > w.stuckAfter {
			alive = false
			loops[w.name] = fmt.Sprintf("stuck: no turn for %s", idle.Round(time.Second))
			continue
		}
		loops[w.name] = "ok"
	}
	return alive, loops
}
