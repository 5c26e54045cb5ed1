package soak

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Revision is one revision of a player session as a watch of every revision delivers it, in order.
type Revision struct {
	Namespace, Name, GameSession, PlayerID string
	// Status is its status ("" before a decision; RESERVED, ACTIVE, COMPLETED, TIMEDOUT), Refused whether
	// admission refused it, Deleted whether this revision is its deletion.
	Status           string
	Refused, Deleted bool
	// Reserved is when it was reserved (its status.creationTime), Seen when the watch delivered this revision.
	Reserved, Seen time.Time
	// Max is its game session's maximum.
	Max int
}

// allowed are the status changes of the state machine; anything else is a violation.
var allowed = map[[2]string]bool{
	{"", "RESERVED"}: true, {"RESERVED", "ACTIVE"}: true, {"RESERVED", "TIMEDOUT"}: true, {"RESERVED", "COMPLETED"}: true,
	{"ACTIVE", "COMPLETED"}: true,
}

// Observer checks the invariants a watch of every player session revision shows: a game session's seats
// (its RESERVED and ACTIVE player sessions) never above its maximum; no status change outside the state
// machine; no TIMEDOUT earlier than the timeout after the reservation (and how late each was). Safe for
// concurrent use; Observe takes revisions in the watch's order.
type Observer struct {
	Timeout time.Duration

	mu         sync.Mutex
	status     map[string]string          // namespace/name -> status
	holding    map[string]map[string]bool // namespace/game session -> holders
	players    map[string]Sighting        // namespace/game session/player -> what was seen of its player session
	violations []string
	lateness   []time.Duration
	revisions  int
}

// Observe checks one revision.
func (o *Observer) Observe(r Revision) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.status == nil {
		o.status, o.holding, o.players = map[string]string{}, map[string]map[string]bool{}, map[string]Sighting{}
	}
	o.revisions++
	if r.PlayerID != "" {
		pkey := r.Namespace + "/" + r.GameSession + "/" + r.PlayerID
		seen := o.players[pkey]
		seen.Seen = true
		if seen.Decided.IsZero() && (r.Status != "" || r.Refused) {
			seen.Decided = r.Seen
		}
		o.players[pkey] = seen
	}
	key, game := r.Namespace+"/"+r.Name, r.Namespace+"/"+r.GameSession
	before := o.status[key]
	after := r.Status
	if r.Deleted {
		delete(o.status, key)
		delete(o.holding[game], key)
		return
	}
	if before != after {
		if !allowed[[2]string{before, after}] {
			o.violations = append(o.violations, fmt.Sprintf("player session %s went from %q to %q", key, before, after))
		}
		if after == "TIMEDOUT" {
			late := r.Seen.Sub(r.Reserved.Add(o.Timeout))
			if r.Reserved.IsZero() || late < 0 {
				o.violations = append(o.violations, fmt.Sprintf("player session %s TIMEDOUT %s after its reservation, before the %s timeout", key, r.Seen.Sub(r.Reserved), o.Timeout))
			} else {
				o.lateness = append(o.lateness, late)
			}
		}
	}
	o.status[key] = after
	if o.holding[game] == nil {
		o.holding[game] = map[string]bool{}
	}
	if after == "RESERVED" || after == "ACTIVE" {
		o.holding[game][key] = true
	} else {
		delete(o.holding[game], key)
	}
	if n := len(o.holding[game]); r.Max > 0 && n > r.Max {
		o.violations = append(o.violations, fmt.Sprintf("game session %s holds %d seats, above its maximum %d", game, n, r.Max))
	}
}

// Sighting is what the watch saw of a player's player session in a game session: any revision of it, and
// when the first one with admission's decision (a status, or refused) was delivered.
type Sighting struct {
	Seen    bool
	Decided time.Time
}

// Sighting is what was seen of player's player session in gameSession ("namespace/name").
func (o *Observer) Sighting(gameSession, player string) Sighting {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.players[gameSession+"/"+player]
}

// Relisted forgets the player sessions of namespace that a new list (after the watch broke: a compaction,
// a lost connection) no longer shows: they were deleted while the watch was down.
func (o *Observer) Relisted(namespace string, names map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for key := range o.status {
		if name, ok := strings.CutPrefix(key, namespace+"/"); ok && !names[name] {
			delete(o.status, key)
			for _, holders := range o.holding {
				delete(holders, key)
			}
		}
	}
}

// Holds reports whether the watch holds exactly the player sessions of namespace that statuses lists (name
// -> status): when nothing changes any more, that it has seen every revision up to now.
func (o *Observer) Holds(namespace string, statuses map[string]string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for key, status := range o.status {
		name, ok := strings.CutPrefix(key, namespace+"/")
		if !ok {
			continue
		}
		if want, ok := statuses[name]; !ok || want != status {
			return false
		}
		n++
	}
	return n == len(statuses)
}

// Violations are what the revisions broke.
func (o *Observer) Violations() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.violations)
}

// Lateness is how late each TIMEDOUT came after its timeout: p50, p99, max, and how many.
func (o *Observer) Lateness() (p50, p99, max time.Duration, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return percentiles(slices.Clone(o.lateness))
}

// percentiles are d's p50, p99 and max, and its length (d is sorted in place).
func percentiles(d []time.Duration) (p50, p99, max time.Duration, n int) {
	if len(d) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)], d[len(d)-1], len(d)
}

// Revisions is how many revisions were observed.
func (o *Observer) Revisions() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.revisions
}
