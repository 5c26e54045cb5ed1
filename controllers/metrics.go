package controllers

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

var (
	admissionsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_admissions_total",
		Help: "Player sessions granted a seat (RESERVED).",
	})
	admissionsRefusedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_admissions_refused_total",
		Help: "Player sessions refused a seat, by reason: at create time by the admission webhook, or later by the controllers.",
	}, []string{"reason"})
	archivedTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_history_archived_total",
		Help: "Ended player sessions and game sessions moved to the history store (written there, then their custom resource deleted).",
	})
	archiveErrorsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_history_archive_errors_total",
		Help: "Failed writes to the history store (the object stays a custom resource and is retried).",
	})
	timeoutsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_player_session_timeouts_total",
		Help: "RESERVED player sessions that were not accepted in time (TIMEDOUT).",
	})
	timeoutLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "playersessions_timeout_lateness_seconds",
		Help:    "How long after its deadline a reservation was marked TIMEDOUT.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	reconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "playersessions_reconcile_duration_seconds",
		Help:    "Reconcile latency by controller.",
		Buckets: prometheus.DefBuckets,
	}, []string{"controller"})
	agonesAllocationsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_agones_allocations_total",
		Help: "GameServerAllocations made for game sessions, by outcome (Allocated, UnAllocated, Contention, Failed).",
	}, []string{"outcome"})
	agonesBindsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_agones_binds_total",
		Help: "Game sessions that became ACTIVE on an Allocated Agones GameServer.",
	})
	agonesPlayerTransitionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_agones_player_transitions_total",
		Help: "Player sessions moved by their GameServer's players List, by new status (ACTIVE, COMPLETED).",
	}, []string{"status"})
	agonesUnknownValuesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_agones_unknown_list_values_total",
		Help: "Values seen in a GameServer's players List that match none of its game session's player sessions (each counted once).",
	})
	playerSessionsDesc = prometheus.NewDesc("playersessions_player_sessions",
		"Player sessions in the manager's cache by status (PENDING: waiting for or refused a seat).", []string{"status"}, nil)
	gameSessionsDesc = prometheus.NewDesc("playersessions_game_sessions",
		"Game sessions in the manager's cache by status.", []string{"status"}, nil)
)

// sessionCollector counts sessions by status from the cache's status index at scrape time.
type sessionCollector struct {
	reader atomic.Pointer[client.Reader]
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- playerSessionsDesc
	ch <- gameSessionsDesc
}

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	rp := c.reader.Load()
	if rp == nil {
		return
	}
	reader := *rp
	for _, s := range []string{StatusPending, string(gamev1.PlayerSessionReserved), string(gamev1.PlayerSessionActive),
		string(gamev1.PlayerSessionCompleted), string(gamev1.PlayerSessionTimedOut)} {
		var list gamev1.PlayerSessionList
		if err := reader.List(ctx, &list, client.MatchingFields{IndexPlayerSessionStatus: s}, client.UnsafeDisableDeepCopy); err != nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(playerSessionsDesc, prometheus.GaugeValue, float64(len(list.Items)), s)
	}
	var games gamev1.GameSessionList
	if err := reader.List(ctx, &games, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	counts := map[string]int{}
	for i := range games.Items {
		counts[string(games.Items[i].Status.Status)]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(gameSessionsDesc, prometheus.GaugeValue, float64(n), s)
	}
}

var (
	collector    = &sessionCollector{}
	registerOnce sync.Once
)

// RecordCreateRefusal counts a player session that the admission webhook refused at create time.
func RecordCreateRefusal(reason string) {
	admissionsRefusedTotal.WithLabelValues(reason).Inc()
}

// RegisterMetrics adds the operator's metrics to controller-runtime's registry; the session gauges are read
// from reader, the manager's cache.
func RegisterMetrics(reader client.Reader) {
	registerOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(admissionsTotal, admissionsRefusedTotal, timeoutsTotal, timeoutLateness,
			reconcileDuration, collector, agonesAllocationsTotal, agonesBindsTotal, agonesPlayerTransitionsTotal, agonesUnknownValuesTotal,
			archivedTotal, archiveErrorsTotal)
	})
	collector.reader.Store(&reader)
}
