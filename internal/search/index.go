package search

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/google/btree"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// Index holds the game sessions of every fleet (by namespace, fleet and status) in the orders a search walks:
// by creation time, by each other operand, by each game property's value, and the game sessions with seats
// available. A search is driven by the most selective condition the filter requires (a range of one of
// these orders), or walks the sort's order and stops once it has a page: it costs what it returns, not what
// the fleet holds. It is kept exact by the GameSession informer (Feed): a seat taken or freed is a write of
// the game session's seat ledger, so its next event re-files it.
type Index struct {
	mu     sync.RWMutex
	fleets map[fleetKey]*fleet
	byUID  map[types.UID]*entry
	byName map[types.NamespacedName]*entry
	changes
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{fleets: map[fleetKey]*fleet{}, byUID: map[types.UID]*entry{}, byName: map[types.NamespacedName]*entry{}}
}

// fleetKey is a part of the index: the game sessions of a fleet in one status (SearchGameSessions reads
// the ACTIVE part; the query API any).
type fleetKey struct {
	namespace, fleet string
	status           gamev1.GameSessionStatusValue
}

// entry is one game session as the index files it; it is replaced, never changed, when the game session
// changes (the orders compare its fields).
type entry struct {
	s   Session
	uid string              // the last tie: game sessions not yet given an id have none
	obj *gamev1.GameSession // the cache's object: read only
	key fleetKey
}

// fleet is the orders of one fleet's ACTIVE game sessions. Every order ends with creation time, then
// game session id, so no two entries compare equal.
type fleet struct {
	byID      map[string]*entry
	all       *btree.BTreeG[*entry] // by creation time
	available *btree.BTreeG[*entry] // with seats available, by creation time
	byOperand map[string]*btree.BTreeG[*entry]
	byProp    map[string]*btree.BTreeG[*entry] // by property key: the game sessions that have it, by value
}

// indexedOperands have an order of their own (creation time is the order of all).
var indexedOperands = []string{GameSessionID, GameSessionName, PlayerSessionCount, MaximumSessions, HasAvailablePlayerSessions}

func newFleet() *fleet {
	f := &fleet{byID: map[string]*entry{}, all: btree.NewG(16, lessBy(CreationTimeMillis)), available: btree.NewG(16, lessBy(CreationTimeMillis)),
		byOperand: map[string]*btree.BTreeG[*entry]{}, byProp: map[string]*btree.BTreeG[*entry]{}}
	for _, o := range indexedOperands {
		f.byOperand[o] = btree.NewG(16, lessBy(o))
	}
	return f
}

func (f *fleet) tree(operand string) *btree.BTreeG[*entry] {
	if operand == CreationTimeMillis {
		return f.all
	}
	if key, ok := strings.CutPrefix(operand, PropertyPrefix); ok {
		return f.byProp[key]
	}
	return f.byOperand[operand]
}

func (f *fleet) add(e *entry) {
	if e.s.ID != "" {
		f.byID[e.s.ID] = e
	}
	f.all.ReplaceOrInsert(e)
	if e.s.HasAvailablePlayerSessions {
		f.available.ReplaceOrInsert(e)
	}
	for _, t := range f.byOperand {
		t.ReplaceOrInsert(e)
	}
	for k := range e.s.Properties {
		t := f.byProp[k]
		if t == nil {
			t = btree.NewG(16, lessBy(PropertyPrefix+k))
			f.byProp[k] = t
		}
		t.ReplaceOrInsert(e)
	}
}

func (f *fleet) remove(e *entry) {
	if f.byID[e.s.ID] == e {
		delete(f.byID, e.s.ID)
	}
	f.all.Delete(e)
	f.available.Delete(e)
	for _, t := range f.byOperand {
		t.Delete(e)
	}
	for k := range e.s.Properties {
		if t := f.byProp[k]; t != nil {
			if t.Delete(e); t.Len() == 0 {
				delete(f.byProp, k)
			}
		}
	}
}

// SessionOf is what a search reads of gs. A game session has seats available while it is ACTIVE, has fewer
// player sessions than its maximum and accepts new ones (its creation policy ACCEPT_ALL).
func SessionOf(gs *gamev1.GameSession) Session {
	created := gs.CreationTimestamp.Time
	if gs.Status.CreationTime != nil {
		created = gs.Status.CreationTime.Time
	}
	s := Session{ID: gs.Status.GameSessionID, Name: gs.Spec.Name, MaximumSessions: int64(gs.Spec.MaximumPlayerSessionCount),
		CreationTimeMillis: created.UnixMilli(), PlayerSessionCount: int64(gs.Status.CurrentPlayerSessionCount),
		HasAvailablePlayerSessions: gs.Status.Status == gamev1.GameSessionActive && gs.Status.CurrentPlayerSessionCount < gs.Spec.MaximumPlayerSessionCount &&
			gs.Spec.PlayerSessionCreationPolicy != gamev1.PlayerSessionCreationPolicyDenyAll}
	if len(gs.Spec.GameProperties) > 0 {
		s.Properties = make(map[string]string, len(gs.Spec.GameProperties))
		for _, p := range gs.Spec.GameProperties {
			s.Properties[p.Key] = p.Value
		}
	}
	return s
}

// searchable reports whether SearchGameSessions returns e: ACTIVE (its part of the index), with its id,
// not being deleted.
func searchable(e *entry) bool {
	return e.s.ID != "" && e.obj.DeletionTimestamp.IsZero()
}

// Upsert files gs as it is now. gs is the cache's object, kept and read, never changed.
func (ix *Index) Upsert(gs *gamev1.GameSession) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old := ix.dropLocked(gs.UID)
	e := &entry{s: SessionOf(gs), uid: string(gs.UID), obj: gs, key: fleetKey{gs.Namespace, gs.Spec.FleetID, gs.Status.Status}}
	f := ix.fleets[e.key]
	if f == nil {
		f = newFleet()
		ix.fleets[e.key] = f
	}
	f.add(e)
	ix.byUID[gs.UID] = e
	ix.byName[types.NamespacedName{Namespace: gs.Namespace, Name: gs.Name}] = e
	if old == nil {
		ix.record(watch.Added, nil, gs)
	} else {
		ix.record(watch.Modified, old.obj, gs)
	}
}

// Delete drops gs.
func (ix *Index) Delete(gs *gamev1.GameSession) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if old := ix.dropLocked(gs.UID); old != nil {
		ix.record(watch.Deleted, old.obj, gs)
	}
}

func (ix *Index) dropLocked(uid types.UID) *entry {
	old := ix.byUID[uid]
	if old == nil {
		return nil
	}
	delete(ix.byUID, uid)
	if key := (types.NamespacedName{Namespace: old.obj.Namespace, Name: old.obj.Name}); ix.byName[key] == old {
		delete(ix.byName, key)
	}
	f := ix.fleets[old.key]
	f.remove(old)
	if f.all.Len() == 0 {
		delete(ix.fleets, old.key)
	}
	return old
}

// Get is the game session of that namespace and name (nil: none), the cache's object: read only.
func (ix *Index) Get(namespace, name string) *gamev1.GameSession {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if e := ix.byName[types.NamespacedName{Namespace: namespace, Name: name}]; e != nil {
		return e.obj
	}
	return nil
}

// Query is a search of one fleet's ACTIVE game sessions.
type Query struct {
	Namespace, FleetID string
	// Filter selects (nil: all); Sort orders (nil: by creation time, oldest first).
	Filter Expr
	Sort   *Sort
	// Limit is the page's size (at least 1); After is where the previous page ended (nil: the start).
	Limit int
	After *Position
}

// Position is where a page ended in a search's order: the last game session's place in it, so that the
// next page starts after it even if that game session has changed or gone since.
type Position struct {
	// Null: past the game sessions that have the sorted property (the others come last).
	Null     bool   `json:"n,omitempty"`
	Str      string `json:"s,omitempty"`
	Num      int64  `json:"v,omitempty"`
	Creation int64  `json:"c"`
	ID       string `json:"i"`
	UID      string `json:"u,omitempty"`
}

// Result is a page of a search.
type Result struct {
	GameSessions []*gamev1.GameSession // the cache's objects: read only
	// Next is where this page ended, when more may follow (nil: the last page).
	Next *Position
	// Examined is how many game sessions the search read: its cost.
	Examined int
}

// Search answers q from the index (the fleet's ACTIVE game sessions): from the narrowest range that the
// filter's required conditions allow when it is small (its matches sorted), else by walking the sort's
// order (or a range of it the filter requires) and stopping at a full page.
func (ix *Index) Search(q Query) Result {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	f := ix.fleets[fleetKey{q.Namespace, q.FleetID, gamev1.GameSessionActive}]
	if f == nil {
		return Result{}
	}
	r, _ := f.search(q, searchable)
	return r
}

// search answers q from one part of the index, with keep as one more condition (read after the filter).
// It also returns the page's entries.
func (f *fleet) search(q Query, keep func(*entry) bool) (Result, []*entry) {
	o := orderOf(q.Sort)
	limit := max(q.Limit, 1)
	match := func(e *entry) bool { return (q.Filter == nil || q.Filter.Match(&e.s)) && keep(e) }
	small, inOrder := f.plan(q.Filter, o, limit)
	if small != nil {
		var matched []*entry
		examined := 0
		small.walk(nil, o, func(e *entry) bool {
			examined++
			if match(e) {
				matched = append(matched, e)
			}
			return true
		})
		return pageOf(matched, o, q.After, limit, examined)
	}
	var r Result
	var page []*entry
	take := func(e *entry) bool { // false: the page is full, and one more matches: Next is set
		r.Examined++
		if !match(e) {
			return true
		}
		if len(page) == limit {
			p := o.position(page[limit-1])
			r.Next = &p
			return false
		}
		page = append(page, e)
		r.GameSessions = append(r.GameSessions, e.obj)
		return true
	}
	if inOrder != nil {
		inOrder.walk(q.After, o, take)
	} else {
		f.walkOrder(q.After, o, take)
	}
	return r, page
}

// pageOf sorts matched in o and takes the page after the position, and its entries.
func pageOf(matched []*entry, o order, after *Position, limit, examined int) (Result, []*entry) {
	slices.SortFunc(matched, o.compare)
	start := 0
	if after != nil {
		pivot := o.pivot(*after)
		start, _ = slices.BinarySearchFunc(matched, pivot, func(e, p *entry) int {
			if c := o.compare(e, p); c != 0 {
				return c
			}
			return -1 // the pivot's own place: after it
		})
	}
	r := Result{Examined: examined}
	page := matched[start:min(len(matched), start+limit)]
	for _, e := range page {
		r.GameSessions = append(r.GameSessions, e.obj)
	}
	if start+limit < len(matched) {
		p := o.position(matched[start+limit-1])
		r.Next = &p
	}
	return r, page
}

// order is a search's order: an operand ascending or descending, the game sessions without a sorted
// property last (by creation time), ties by creation time then id.
type order struct {
	operand string
	desc    bool
}

func orderOf(s *Sort) order {
	if s == nil {
		return order{operand: CreationTimeMillis}
	}
	return order{operand: s.Operand, desc: s.Descending}
}

// value is e's value of the order's operand: a string, a number, or none (a property e lacks).
func value(e *entry, operand string) (str string, num int64, ok bool) {
	switch operand {
	case GameSessionID:
		return e.s.ID, 0, true
	case GameSessionName:
		return e.s.Name, 0, true
	case MaximumSessions:
		return "", e.s.MaximumSessions, true
	case CreationTimeMillis:
		return "", e.s.CreationTimeMillis, true
	case PlayerSessionCount:
		return "", e.s.PlayerSessionCount, true
	case HasAvailablePlayerSessions:
		if e.s.HasAvailablePlayerSessions {
			return "", 1, true
		}
		return "", 0, true
	}
	v, ok := e.s.Properties[strings.TrimPrefix(operand, PropertyPrefix)]
	return v, 0, ok
}

// compareBy compares a and b by operand's value (both having one), then creation time, then id.
func compareBy(a, b *entry, operand string) int {
	as, an, _ := value(a, operand)
	bs, bn, _ := value(b, operand)
	return cmp.Or(cmp.Compare(an, bn), strings.Compare(as, bs), cmp.Compare(a.s.CreationTimeMillis, b.s.CreationTimeMillis), strings.Compare(a.s.ID, b.s.ID), strings.Compare(a.uid, b.uid))
}

func lessBy(operand string) btree.LessFunc[*entry] {
	return func(a, b *entry) bool { return compareBy(a, b, operand) < 0 }
}

func (o order) compare(a, b *entry) int {
	_, _, aok := value(a, o.operand)
	_, _, bok := value(b, o.operand)
	switch {
	case aok && !bok:
		return -1
	case !aok && bok:
		return 1
	case !aok: // both without the property: by creation time
		return compareBy(a, b, CreationTimeMillis)
	case o.desc:
		return -compareBy(a, b, o.operand)
	}
	return compareBy(a, b, o.operand)
}

func (o order) position(e *entry) Position {
	s, n, ok := value(e, o.operand)
	return Position{Null: !ok, Str: s, Num: n, Creation: e.s.CreationTimeMillis, ID: e.s.ID, UID: e.uid}
}

// pivot is an entry at p's place in the order.
func (o order) pivot(p Position) *entry {
	e := &entry{s: Session{ID: p.ID, CreationTimeMillis: p.Creation}, uid: p.UID}
	if p.Null {
		return e
	}
	switch o.operand {
	case GameSessionID:
		e.s.ID = p.Str // the order's value and the tie's are the same
	case GameSessionName:
		e.s.Name = p.Str
	case MaximumSessions:
		e.s.MaximumSessions = p.Num
	case CreationTimeMillis:
		e.s.CreationTimeMillis = p.Num
	case PlayerSessionCount:
		e.s.PlayerSessionCount = p.Num
	case HasAvailablePlayerSessions:
		e.s.HasAvailablePlayerSessions = p.Num == 1
	default:
		e.s.Properties = map[string]string{strings.TrimPrefix(o.operand, PropertyPrefix): p.Str}
	}
	return e
}

// walkOrder visits the fleet's game sessions in o from after the position, until visit returns false.
func (f *fleet) walkOrder(after *Position, o order, visit func(*entry) bool) {
	t := f.tree(o.operand) // nil: a property no game session has
	_, isProp := strings.CutPrefix(o.operand, PropertyPrefix)
	var pivot *entry
	if after != nil {
		pivot = o.pivot(*after)
	}
	stopped := false
	step := func(e *entry) bool {
		if pivot != nil && o.compare(e, pivot) <= 0 {
			return true // the position itself
		}
		stopped = !visit(e)
		return !stopped
	}
	if t != nil && (after == nil || !after.Null) {
		switch {
		case after == nil && !o.desc:
			t.Ascend(step)
		case after == nil:
			t.Descend(step)
		case !o.desc:
			t.AscendGreaterOrEqual(pivot, step)
		default:
			t.DescendLessOrEqual(pivot, step)
		}
	}
	if stopped || !isProp {
		return
	}
	// The game sessions without the sorted property, last, by creation time.
	key := strings.TrimPrefix(o.operand, PropertyPrefix)
	lacking := func(e *entry) bool {
		if _, ok := e.s.Properties[key]; ok {
			return true
		}
		return step(e)
	}
	if after != nil && after.Null {
		f.all.AscendGreaterOrEqual(&entry{s: Session{CreationTimeMillis: after.Creation, ID: after.ID}, uid: after.UID}, lacking)
	} else {
		f.all.Ascend(lacking)
	}
}

// driver is a range of one of the fleet's orders that holds every game session the filter can match.
type driver struct {
	tree    *btree.BTreeG[*entry]
	operand string            // the tree's order
	from    *entry            // the first entry of the range (nil: the tree's first)
	in      func(*entry) bool // whether an entry is still in the range (the walk stops at the first that is not)
	one     *entry            // an id lookup: the range is this entry alone
	exact   bool              // the range is the id lookup's (one, or none)
}

// ordered reports whether walking the driver in its own order walks o (so a page can stop early).
func (d *driver) ordered(o order) bool {
	return d.exact || (!o.desc && d.operand == o.operand)
}

// walk visits the driver's range in its order, from after the position in o when that is its order.
func (d *driver) walk(after *Position, o order, visit func(*entry) bool) {
	if d.exact {
		if d.one != nil && (after == nil || o.compare(d.one, o.pivot(*after)) > 0) {
			visit(d.one)
		}
		return
	}
	from := d.from
	var pivot *entry
	if after != nil && d.ordered(o) {
		if pivot = o.pivot(*after); from == nil || compareBy(pivot, from, d.operand) > 0 {
			from = pivot
		}
	}
	step := func(e *entry) bool {
		if !d.in(e) {
			return false
		}
		if pivot != nil && o.compare(e, pivot) <= 0 {
			return true
		}
		return visit(e)
	}
	if from == nil {
		d.tree.Ascend(step)
	} else {
		d.tree.AscendGreaterOrEqual(from, step)
	}
}

// count counts the driver's range, up to limit.
func (d *driver) count(limit int) int {
	if d.exact {
		if d.one != nil {
			return 1
		}
		return 0
	}
	n := 0
	d.walk(nil, order{}, func(*entry) bool { n++; return n < limit })
	return n
}

// plan chooses how to answer a filter in order o: small, a range the filter requires that is small enough
// to read whole and sort (fewer entries than a walk of the order is expected to read for a page: n
// entries, a fraction size/n of them matching, limit+1 matches needed); or inOrder, a range the filter
// requires that is walked in o (stopping at a full page); or neither: walk o. Ranges are counted no further
// than that bound, so planning costs at most the bound per condition.
func (f *fleet) plan(x Expr, o order, limit int) (small, inOrder *driver) {
	bound := int(math.Sqrt(float64((limit+1)*f.all.Len()))) + 1
	for _, c := range conjuncts(x, nil) {
		d := f.rangeOf(c)
		if d == nil {
			continue
		}
		if d.exact {
			return d, nil
		}
		if size := d.count(bound); size < bound {
			small, bound = d, size // the next must be smaller still
			if size == 0 {
				return small, nil
			}
		} else if inOrder == nil && d.ordered(o) {
			inOrder = d
		}
	}
	if small != nil {
		return small, nil
	}
	return nil, inOrder
}

// conjuncts are the comparisons x requires (the ones ANDed at its top).
func conjuncts(x Expr, out []Comparison) []Comparison {
	switch v := x.(type) {
	case And:
		return conjuncts(v.Y, conjuncts(v.X, out))
	case Comparison:
		return append(out, v)
	}
	return out
}

// rangeOf is the range of an order that holds the game sessions satisfying c (nil: c narrows no order).
func (f *fleet) rangeOf(c Comparison) *driver {
	switch {
	case c.Operand == GameSessionID && c.Op == "=":
		return &driver{exact: true, one: f.byID[c.str], operand: GameSessionID}
	case c.Operand == HasAvailablePlayerSessions && c.boolean == (c.Op == "="): // by creation time, as the default order
		return &driver{tree: f.available, operand: CreationTimeMillis, in: func(*entry) bool { return true }}
	case c.Op == "<>":
		return nil
	}
	t := f.tree(c.Operand)
	if t == nil {
		if strings.HasPrefix(c.Operand, PropertyPrefix) { // no game session has the property
			return &driver{tree: btree.NewG(2, lessBy(CreationTimeMillis)), operand: c.Operand, in: func(*entry) bool { return false }}
		}
		return nil
	}
	d := &driver{tree: t, operand: c.Operand}
	// from: the first entry that can satisfy c; in: whether an entry is still within the range (the walk
	// stops at the first that is not).
	low := func(str string, num int64) *entry {
		return orderOf(&Sort{Operand: c.Operand}).pivot(Position{Str: str, Num: num, Creation: math.MinInt64})
	}
	switch c.Op {
	case "=", ">=":
		d.from = low(c.str, c.num)
	case ">": // a number (strings and booleans compare only with = and <>)
		if c.num == math.MaxInt64 {
			d.in = func(*entry) bool { return false }
			return d
		}
		d.from = low("", c.num+1)
	}
	switch c.Op {
	case "=", "<", "<=":
		d.in = func(e *entry) bool { return c.Match(&e.s) }
	default:
		d.in = func(*entry) bool { return true }
	}
	return d
}
