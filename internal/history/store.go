// Package history is the history store: ended player sessions kept, for the retention period after their
// game session ended, in a PostgreSQL-compatible database instead of etcd. It speaks PostgreSQL's wire
// protocol (pgx) and uses only SQL that PostgreSQL, CockroachDB and YugabyteDB share: no advisory locks
// (migrations serialise on a row lock), no declarative partitioning (a table per day of game-session end,
// dropped whole when its last row has been kept for the retention period).
//
// The manager opens it with --history-store: both reconcilers archive ended player sessions and game
// sessions into it (write, then delete the custom resource), Retention drops expired days on the leader,
// the query API and DescribePlayerSessions merge it with the live index (index.Index.ListAll), and
// DescribeGameSessions with the cache.
package history

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Record is one ended player session as the store keeps it. Object is the PlayerSession as JSON, answered
// as it was when archived.
type Record struct {
	Namespace, Name    string
	PlayerSessionID    string
	GameSessionID      string
	PlayerID           string
	Status             string
	GameSessionEndedAt time.Time
	Object             []byte
}

// Key is a record's place in list order: namespace, then name (the live index's order, so the two tiers
// merge into one sequence).
type Key struct{ Namespace, Name string }

// Query selects records: a namespace ("" for all) and at most one of the indexed questions.
type Query struct {
	Namespace string
	// Name selects one object (with Namespace).
	Name            string
	PlayerSessionID string
	GameSessionID   string
	PlayerID        string
	// Status filters (with GameSessionID, as GameLift's DescribePlayerSessions does).
	Status string
}

// Store is a history store.
type Store struct {
	pool      *pgxpool.Pool
	clock     clock.PassiveClock
	retention time.Duration

	// created remembers the day tables known to exist, so that an archive runs no DDL on a day it has
	// seen: only the first archive into a new day creates its tables (once per day and replica).
	mu      sync.Mutex
	created map[time.Time]bool
}

// Open connects to the database at url and applies the migrations it lacks.
func Open(ctx context.Context, url string, clk clock.PassiveClock, retention time.Duration) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("history store: %w", err)
	}
	cfg.AfterConnect = preferGenericPlans
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("history store: %w", err)
	}
	s := &Store{pool: pool, clock: clk, retention: retention, created: map[time.Time]bool{}}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// preferGenericPlans makes a connection plan each of the store's prepared statements once. A describe
// query is a UNION ALL over one index scan per day table: planning it afresh takes about 12 ms on 30 days,
// executing it under 1 ms, and PostgreSQL plans a prepared statement afresh for its first five executions
// on each connection (plan_cache_mode auto). The generic plan uses the same index per day. A database that
// does not know the setting keeps its own default.
func preferGenericPlans(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42704" || pgErr.Code == "0A000") { // undefined_object, feature_not_supported
		return nil
	}
	return err
}

// Close closes the connections.
func (s *Store) Close() { s.pool.Close() }

// migrations are applied in order, each once, recorded in ps_history_schema.
var migrations = []string{
	// 1: the registry of day tables.
	`CREATE TABLE ps_history_days (day DATE PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL)`,
}

// gameSessionDayTableDDL creates the table of the game sessions that ended on one day.
const gameSessionDayTableDDL = `
CREATE TABLE IF NOT EXISTS %[1]s (
	game_session_id TEXT PRIMARY KEY,
	namespace       TEXT NOT NULL,
	name            TEXT NOT NULL,
	fleet_id        TEXT NOT NULL,
	status          TEXT NOT NULL,
	ended_at        TIMESTAMPTZ NOT NULL,
	object          BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS %[1]s_fleet ON %[1]s (namespace, fleet_id, name, game_session_id);`

// dayTableDDL creates the table of one day of game-session ends, with an index per question.
const dayTableDDL = `
CREATE TABLE IF NOT EXISTS %[1]s (
	player_session_id     TEXT PRIMARY KEY,
	namespace             TEXT NOT NULL,
	name                  TEXT NOT NULL,
	game_session_id       TEXT NOT NULL,
	player_id             TEXT NOT NULL,
	status                TEXT NOT NULL,
	game_session_ended_at TIMESTAMPTZ NOT NULL,
	object                BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS %[1]s_key ON %[1]s (namespace, name);
CREATE INDEX IF NOT EXISTS %[1]s_game ON %[1]s (game_session_id, namespace, name);
CREATE INDEX IF NOT EXISTS %[1]s_player ON %[1]s (player_id, namespace, name);`

// migrate applies the migrations under a row lock, so replicas starting at once apply each exactly once.
func (s *Store) migrate(ctx context.Context) error {
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS ps_history_lock (id INT PRIMARY KEY)`,
		`CREATE TABLE IF NOT EXISTS ps_history_schema (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`,
		`INSERT INTO ps_history_lock (id) VALUES (1) ON CONFLICT (id) DO NOTHING`,
	} {
		if err := retryConcurrentDDL(func() error { _, err := s.pool.Exec(ctx, ddl); return err }); err != nil {
			return fmt.Errorf("history store: preparing migrations: %w", err)
		}
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT id FROM ps_history_lock WHERE id = 1 FOR UPDATE`); err != nil {
			return fmt.Errorf("history store: locking migrations: %w", err)
		}
		var applied int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM ps_history_schema`).Scan(&applied); err != nil {
			return err
		}
		for v := applied + 1; v <= len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("history store: migration %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO ps_history_schema (version, applied_at) VALUES ($1, $2)`, v, s.clock.Now()); err != nil {
				return err
			}
		}
		return nil
	})
}

// retryConcurrentDDL retries a statement that lost a race with the same statement elsewhere (two replicas
// creating the same table: PostgreSQL reports a unique violation on its catalog).
func retryConcurrentDDL(f func() error) error {
	var err error
	for range 5 {
		if err = f(); err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "23505" && pgErr.Code != "42P07" && pgErr.Code != "42710" && pgErr.Code != "40001") {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func tableOf(d time.Time) string { return "ps_history_" + d.Format("20060102") }

func gameSessionTableOf(d time.Time) string { return "gs_history_" + d.Format("20060102") }

// ensureDay creates the tables of day d and registers them, unless this store has already done so.
func (s *Store) ensureDay(ctx context.Context, d time.Time) error {
	s.mu.Lock()
	known := s.created[d]
	s.mu.Unlock()
	if known {
		return nil
	}
	for _, t := range []struct{ ddl, table string }{{dayTableDDL, tableOf(d)}, {gameSessionDayTableDDL, gameSessionTableOf(d)}} {
		if err := retryConcurrentDDL(func() error {
			_, err := s.pool.Exec(ctx, fmt.Sprintf(t.ddl, t.table))
			return err
		}); err != nil {
			return fmt.Errorf("history store: creating %s: %w", t.table, err)
		}
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO ps_history_days (day, created_at) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING`, d, s.clock.Now()); err != nil {
		return err
	}
	s.remember(d, true)
	return nil
}

// remember records whether the tables of day d exist.
func (s *Store) remember(d time.Time, exists bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exists {
		s.created[d] = true
	} else {
		delete(s.created, d)
	}
}

// intoDay runs write against the tables of day d, creating them first if need be. If another replica
// dropped them (retention) since this one created them, it creates them again and retries once.
func (s *Store) intoDay(ctx context.Context, d time.Time, write func() error) error {
	if err := s.ensureDay(ctx, d); err != nil {
		return err
	}
	err := write()
	if !isUndefinedTable(err) {
		return err
	}
	s.remember(d, false)
	if err := s.ensureDay(ctx, d); err != nil {
		return err
	}
	return write()
}

// isUndefinedTable reports a day table dropped under a statement (42P01).
func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// Archive writes recs, idempotently: a record already there (archived before a crash, or by another
// replica at the same time) is left as it is, so there is only ever one copy of each.
func (s *Store) Archive(ctx context.Context, recs []Record) error {
	byDay := map[time.Time][]Record{}
	for _, r := range recs {
		if r.PlayerSessionID == "" || r.GameSessionEndedAt.IsZero() {
			return fmt.Errorf("history store: record %s/%s has no player session id or game session end", r.Namespace, r.Name)
		}
		d := day(r.GameSessionEndedAt)
		byDay[d] = append(byDay[d], r)
	}
	for d, rs := range byDay {
		if err := s.intoDay(ctx, d, func() error {
			batch := &pgx.Batch{}
			for _, r := range rs {
				batch.Queue(`INSERT INTO `+tableOf(d)+` (player_session_id, namespace, name, game_session_id, player_id, status, game_session_ended_at, object)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (player_session_id) DO NOTHING`,
					r.PlayerSessionID, r.Namespace, r.Name, r.GameSessionID, r.PlayerID, r.Status, r.GameSessionEndedAt, r.Object)
			}
			return s.pool.SendBatch(ctx, batch).Close()
		}); err != nil {
			return fmt.Errorf("history store: archiving into %s: %w", tableOf(d), err)
		}
	}
	return nil
}

// days lists the day tables that exist, oldest first.
func (s *Store) days(ctx context.Context) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT day FROM ps_history_days ORDER BY day`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[time.Time])
}

// selection is a read over every day table: conditions joined by AND, with their arguments numbered as
// they are added.
type selection struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *selection) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

// and adds a condition.
func (q *selection) and(cond string) { q.where = append(q.where, cond) }

// eq adds "column = value", unless value is empty (no condition).
func (q *selection) eq(column, value string) {
	if value != "" {
		q.and(column + " = " + q.arg(value))
	}
}

// after adds "(a, b) > (x, y)": the rows after the key (x, y) in the order (a, b).
func (q *selection) after(a, b, x, y string) {
	q.and(fmt.Sprintf("(%s, %s) > (%s, %s)", a, b, q.arg(x), q.arg(y)))
}

// read runs "SELECT cols FROM table(d) WHERE ..." on every day table as one UNION ALL in order, at most
// limit rows (0: all), and scans each row with scan. A day table dropped between reading the registry and
// querying it (retention) makes it read the registry again, once.
func read[T any](ctx context.Context, s *Store, q *selection, table func(time.Time) string, cols, order string, limit int, scan func(pgx.CollectableRow) (T, error)) ([]T, error) {
	if limit > 0 {
		q.arg(limit) // a parameter: one prepared statement whatever the page size
	}
	once := func() ([]T, error) {
		days, err := s.days(ctx)
		if err != nil || len(days) == 0 {
			return nil, err
		}
		cond := ""
		if len(q.where) > 0 {
			cond = " WHERE " + strings.Join(q.where, " AND ")
		}
		parts := make([]string, len(days))
		for i, d := range days {
			parts[i] = "SELECT " + cols + " FROM " + table(d) + cond
		}
		sql := strings.Join(parts, " UNION ALL ") + " ORDER BY " + order
		if limit > 0 {
			sql += fmt.Sprintf(" LIMIT $%d", len(q.args))
		}
		rows, err := s.pool.Query(ctx, sql, q.args...)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, scan)
	}
	out, err := once()
	if isUndefinedTable(err) {
		out, err = once()
	}
	if err != nil {
		return nil, fmt.Errorf("history store: %w", err)
	}
	return out, nil
}

// List answers q: at most limit records (0: all) after the key after, in key order, from every day table,
// each through the index of q's question, so it costs what it returns.
func (s *Store) List(ctx context.Context, q Query, after Key, limit int) ([]Record, error) {
	var sel selection
	sel.eq("namespace", q.Namespace)
	sel.eq("name", q.Name)
	switch { // one question, through its index
	case q.PlayerSessionID != "":
		sel.eq("player_session_id", q.PlayerSessionID)
	case q.GameSessionID != "":
		sel.eq("game_session_id", q.GameSessionID)
		sel.eq("status", q.Status)
	case q.PlayerID != "":
		sel.eq("player_id", q.PlayerID)
	}
	if after != (Key{}) {
		sel.after("namespace", "name", after.Namespace, after.Name)
	}
	// The columns in Record's field order.
	return read(ctx, s, &sel, tableOf, "namespace, name, player_session_id, game_session_id, player_id, status, game_session_ended_at, object",
		"namespace, name", limit, pgx.RowToStructByPos[Record])
}

// DropExpired drops, whole, every day table whose last possible record has been kept for the retention
// period: day D holds game sessions that ended before D+1, so it goes at D+1+retention, never a moment
// before any of its records is due (GameLift's rule: kept 30 days after the game session ended). It
// returns the days dropped.
func (s *Store) DropExpired(ctx context.Context) ([]time.Time, error) {
	days, err := s.days(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var dropped []time.Time
	for _, d := range days {
		if now.Before(d.AddDate(0, 0, 1).Add(s.retention)) {
			continue
		}
		if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS `+tableOf(d)+`, `+gameSessionTableOf(d)); err != nil {
			return dropped, fmt.Errorf("history store: dropping %s: %w", tableOf(d), err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM ps_history_days WHERE day = $1`, d); err != nil {
			return dropped, err
		}
		s.remember(d, false)
		dropped = append(dropped, d)
	}
	sort.Slice(dropped, func(i, j int) bool { return dropped[i].Before(dropped[j]) })
	return dropped, nil
}

// GameSessionRecord is one ended game session as the store keeps it. Object is the GameSession as JSON.
type GameSessionRecord struct {
	Namespace, Name string
	GameSessionID   string
	FleetID         string
	Status          string
	EndedAt         time.Time
	Object          []byte
}

// GameSessionQuery selects game sessions of a namespace: by id, or by fleet with an optional status.
type GameSessionQuery struct {
	Namespace     string
	GameSessionID string
	FleetID       string
	Status        string
}

// ArchiveGameSessions writes recs, idempotently (one copy of each game session id).
func (s *Store) ArchiveGameSessions(ctx context.Context, recs []GameSessionRecord) error {
	for _, r := range recs {
		if r.GameSessionID == "" || r.EndedAt.IsZero() {
			return fmt.Errorf("history store: game session %s/%s has no id or end", r.Namespace, r.Name)
		}
		d := day(r.EndedAt)
		if err := s.intoDay(ctx, d, func() error {
			_, err := s.pool.Exec(ctx, `INSERT INTO `+gameSessionTableOf(d)+` (game_session_id, namespace, name, fleet_id, status, ended_at, object)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (game_session_id) DO NOTHING`,
				r.GameSessionID, r.Namespace, r.Name, r.FleetID, r.Status, r.EndedAt, r.Object)
			return err
		}); err != nil {
			return fmt.Errorf("history store: archiving game session %s/%s: %w", r.Namespace, r.Name, err)
		}
	}
	return nil
}

// GameSessionKey is a game session's place in DescribeGameSessions' order: its object name, then its id (a
// name can be reused once its game session has ended, so the name alone does not say where a page ended).
type GameSessionKey struct {
	Name          string
	GameSessionID string
}

// ListGameSessions answers q in key order (name, then id): at most limit (0: all) after the key after.
func (s *Store) ListGameSessions(ctx context.Context, q GameSessionQuery, after GameSessionKey, limit int) ([]GameSessionRecord, error) {
	var sel selection
	sel.and("namespace = " + sel.arg(q.Namespace)) // always: an empty namespace holds nothing
	sel.eq("game_session_id", q.GameSessionID)
	sel.eq("fleet_id", q.FleetID)
	sel.eq("status", q.Status)
	if after != (GameSessionKey{}) {
		sel.after("name", "game_session_id", after.Name, after.GameSessionID)
	}
	// The columns in GameSessionRecord's field order.
	return read(ctx, s, &sel, gameSessionTableOf, "namespace, name, game_session_id, fleet_id, status, ended_at, object",
		"name, game_session_id", limit, pgx.RowToStructByPos[GameSessionRecord])
}

// Retention drops the expired days of the store: at start and then every Interval (an hour when 0), on
// the elected leader only (a manager Runnable).
type Retention struct {
	Store    *Store
	Clock    clock.Clock
	Interval time.Duration
}

// NeedLeaderElection is true: one replica drops days.
func (r *Retention) NeedLeaderElection() bool { return true }

// Start drops expired days until ctx ends; a failed pass is retried at the next tick.
func (r *Retention) Start(ctx context.Context) error {
	interval := r.Interval
	if interval == 0 {
		interval = time.Hour
	}
	for {
		if _, err := r.Store.DropExpired(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Dropping expired days of the history store")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.Clock.After(interval):
		}
	}
}
