// Package metrics holds the operator's Prometheus metrics, registered in controller-runtime's registry: the
// reconcilers, the admission webhook and the GameLift endpoint count through it, and the session gauges
// read the manager's cache at scrape time.
package metrics

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/indexes"
)

// The operator's counters and histograms; each one's Help says what it counts.
var (
	Admissions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_admissions_total",
		Help: "Player sessions granted a seat (RESERVED).",
	})
	Refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_admissions_refused_total",
		Help: "Player sessions refused a seat, by reason: at create time by the admission webhook, or later by the controllers.",
	}, []string{"reason"})
	Archived = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_history_archived_total",
		Help: "Ended player sessions and game sessions moved to the history store (written there, then their custom resource deleted).",
	})
	ArchiveErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_history_archive_errors_total",
		Help: "Failed writes to the history store (the object stays a custom resource and is retried).",
	})
	Relists = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_informer_relists_total",
		Help: "Lists by the informers that feed the query indexes, by kind: the first list, then one after every watch that broke or expired; the index holds its resourceVersion while a relist is applied.",
	}, []string{"kind"})
	Timeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_player_session_timeouts_total",
		Help: "RESERVED player sessions that were not accepted in time (TIMEDOUT).",
	})
	TimeoutLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "playersessions_timeout_lateness_seconds",
		Help:    "How long after its deadline a reservation was marked TIMEDOUT.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	reconcileDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "playersessions_reconcile_duration_seconds",
		Help:    "Reconcile latency by controller.",
		Buckets: prometheus.DefBuckets,
	}, []string{"controller"})
	AgonesAllocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_agones_allocations_total",
		Help: "GameServerAllocations made for game sessions, by outcome (Allocated, UnAllocated, Contention, Failed).",
	}, []string{"outcome"})
	AgonesBinds = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_agones_binds_total",
		Help: "Game sessions that became ACTIVE on an Allocated Agones GameServer.",
	})
	AgonesPlayerTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_agones_player_transitions_total",
		Help: "Player sessions moved by their GameServer's players List, by new status (ACTIVE, COMPLETED).",
	}, []string{"status"})
	AgonesUnknownListValues = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playersessions_agones_unknown_list_values_total",
		Help: "Values seen in a GameServer's players List that match none of its game session's player sessions (each counted once).",
	})
	GameLiftRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playersessions_gamelift_requests_total",
		Help: "GameLift endpoint calls, by action (unknown for an action it does not serve) and code (ok, or the error type answered: InternalServiceException is a 5xx).",
	}, []string{"action", "code"})
	GameLiftDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "playersessions_gamelift_request_duration_seconds",
		Help:    "Time the GameLift endpoint took to answer a call, by action.",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"action"})
	QueryDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "playersessions_query_request_duration_seconds",
		Help:    "Time the query API (query.playersessions.dev) took to answer a request, by verb, resource and status code (a watch: to its start).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
	}, []string{"verb", "resource", "code"})
	playerSessionsDesc = prometheus.NewDesc("playersessions_player_sessions",
		"Player sessions in the manager's cache by status (PENDING: waiting for or refused a seat).", []string{"status"}, nil)
	gameSessionsDesc = prometheus.NewDesc("playersessions_game_sessions",
		"Game sessions in the manager's cache by status.", []string{"status"}, nil)
	capacityDesc = prometheus.NewDesc("playersessions_seats_capacity",
		"Seats of the ACTIVE game sessions (the sum of their maximumPlayerSessionCount); those in use are playersessions_player_sessions{status=~\"RESERVED|ACTIVE\"}.", nil, nil)
	reservationAgeDesc = prometheus.NewDesc("playersessions_reservation_oldest_age_seconds",
		"Age of the oldest RESERVED player session (since its reservation): it stays under the reservation timeout while timeouts keep up.", nil, nil)
	backlogDesc = prometheus.NewDesc("playersessions_history_backlog",
		"Ended player sessions still custom resources more than the history grace (and a minute) after their game session ended: the history store's archive backlog (absent without a history store).", nil, nil)
)

// sessionCollector counts sessions by status from the cache's status index at scrape time.
type sessionCollector struct {
	reader atomic.Pointer[client.Reader]
	grace  atomic.Int64 // the history grace (ns); 0: no history store
	now    func() time.Time
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- playerSessionsDesc
	ch <- gameSessionsDesc
	ch <- capacityDesc
	ch <- backlogDesc
	ch <- reservationAgeDesc
}

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	rp := c.reader.Load()
	if rp == nil {
		return
	}
	reader := *rp
	backlog := 0
	for _, s := range []string{indexes.StatusPending, string(gamev1.PlayerSessionReserved), string(gamev1.PlayerSessionActive),
		string(gamev1.PlayerSessionCompleted), string(gamev1.PlayerSessionTimedOut)} {
		var list gamev1.PlayerSessionList
		if err := reader.List(ctx, &list, client.MatchingFields{indexes.PlayerSessionStatus: s}, client.UnsafeDisableDeepCopy); err != nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(playerSessionsDesc, prometheus.GaugeValue, float64(len(list.Items)), s)
		if s == string(gamev1.PlayerSessionReserved) {
			oldest := 0.0
			for i := range list.Items {
				if t := list.Items[i].Status.CreationTime; t != nil {
					oldest = max(oldest, c.now().Sub(t.Time).Seconds())
				}
			}
			ch <- prometheus.MustNewConstMetric(reservationAgeDesc, prometheus.GaugeValue, oldest)
		}
		if grace := time.Duration(c.grace.Load()); grace > 0 && (s == string(gamev1.PlayerSessionCompleted) || s == string(gamev1.PlayerSessionTimedOut)) {
			due := c.now().Add(-grace - time.Minute)
			for i := range list.Items {
				if t := list.Items[i].Status.GameSessionTerminationTime; t != nil && t.Time.Before(due) {
					backlog++
				}
			}
		}
	}
	if c.grace.Load() > 0 {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(backlog))
	}
	var games gamev1.GameSessionList
	if err := reader.List(ctx, &games, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	counts := map[string]int{}
	capacity := 0
	for i := range games.Items {
		counts[string(games.Items[i].Status.Status)]++
		if games.Items[i].Status.Status == gamev1.GameSessionActive {
			capacity += int(games.Items[i].Spec.MaximumPlayerSessionCount)
		}
	}
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(capacity))
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(gameSessionsDesc, prometheus.GaugeValue, float64(n), s)
	}
}

var (
	collector    = &sessionCollector{now: time.Now}
	registerOnce sync.Once
)

// Refused counts a player session refused a seat for reason, at create time or later.
func Refused(reason string) {
	Refusals.WithLabelValues(reason).Inc()
}

// GameLiftCall records one call of the GameLift endpoint: its action, the code answered ("ok" or the
// error type) and how long it took.
func GameLiftCall(action, code string, d time.Duration) {
	GameLiftRequests.WithLabelValues(action, code).Inc()
	GameLiftDuration.WithLabelValues(action).Observe(d.Seconds())
}

// QueryRequest records one request of the query API.
func QueryRequest(verb, resource string, status int, d time.Duration) {
	QueryDuration.WithLabelValues(verb, resource, strconv.Itoa(status)).Observe(d.Seconds())
}

// ObserveReconcile records the latency of one reconcile of controller that started at start.
func ObserveReconcile(controller string, start time.Time) {
	reconcileDuration.WithLabelValues(controller).Observe(time.Since(start).Seconds())
}

// Register adds the operator's metrics to controller-runtime's registry; the session gauges are read
// from reader, the manager's cache. historyGrace is the history store's grace (0: no store), for the
// archive backlog.
func Register(reader client.Reader, historyGrace time.Duration) {
	registerOnce.Do(func() {
		ctrlmetrics.Registry.MustRegister(Admissions, Refusals, Timeouts, TimeoutLateness,
			reconcileDuration, collector, AgonesAllocations, AgonesBinds, AgonesPlayerTransitions, AgonesUnknownListValues,
			Archived, ArchiveErrors, GameLiftRequests, GameLiftDuration, QueryDuration, Relists)
		// Known label values start at zero, so that a rate (and an alert on it) sees the first event.
		for _, outcome := range []string{"Allocated", "UnAllocated", "Contention", "Failed"} {
			AgonesAllocations.WithLabelValues(outcome)
		}
		for _, status := range []gamev1.PlayerSessionStatusValue{gamev1.PlayerSessionActive, gamev1.PlayerSessionCompleted} {
			AgonesPlayerTransitions.WithLabelValues(string(status))
		}
	})
	collector.reader.Store(&reader)
	collector.grace.Store(int64(historyGrace))
}
