package query

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/index"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
	"github.com/playersessions/operator/internal/search"
)

// Field selectors of gamesessions, by every accepted name: the short ones, and the CRD's paths.
const (
	gsFieldName      = "metadata.name"
	gsFieldNamespace = "metadata.namespace"
	gsFieldFleet     = "fleetId"
	gsFieldStatus    = "status"
)

var gameSessionFieldAliases = map[string]string{
	"metadata.name": gsFieldName, "metadata.namespace": gsFieldNamespace,
	"fleetId": gsFieldFleet, "spec.fleetId": gsFieldFleet,
	"status": gsFieldStatus, "status.status": gsFieldStatus,
	"hasAvailablePlayerSessions": search.HasAvailablePlayerSessions,
	"gameSessionName":            search.GameSessionName, "spec.name": search.GameSessionName,
	"gameSessionId": search.GameSessionID, "status.gameSessionId": search.GameSessionID,
	"playerSessionCount": search.PlayerSessionCount, "status.currentPlayerSessionCount": search.PlayerSessionCount,
	"maximumSessions": search.MaximumSessions, "spec.maximumPlayerSessionCount": search.MaximumSessions,
}

// convertGameSessionFieldLabel is the field-label conversion of the query API's GameSession: the names
// above, and gameSessionProperties.<key>.
func convertGameSessionFieldLabel(label, value string) (string, string, error) {
	if canonical, ok := gameSessionFieldAliases[label]; ok {
		return canonical, value, nil
	}
	if strings.HasPrefix(label, search.PropertyPrefix) && len(label) > len(search.PropertyPrefix) {
		return label, value, nil
	}
	return "", "", fmt.Errorf("field label not supported: %s (supported: metadata.name, metadata.namespace, fleetId, status, hasAvailablePlayerSessions, gameSessionName, gameSessionId, playerSessionCount, maximumSessions, gameSessionProperties.<key>)", label)
}

// GameSessionREST is the read-only storage of query.playersessions.dev/v1alpha1 gamesessions, answered from
// the search index that SearchGameSessions reads (internal/search): a list reads the parts of the index its
// namespace, fleet and status select, from the narrowest range its other selectors allow.
type GameSessionREST struct {
	index   *search.Index
	tokens  *index.Tokens
	watches *watchLimits
}

var (
	_ rest.Storage              = &GameSessionREST{}
	_ rest.Getter               = &GameSessionREST{}
	_ rest.Lister               = &GameSessionREST{}
	_ rest.Watcher              = &GameSessionREST{}
	_ rest.Scoper               = &GameSessionREST{}
	_ rest.SingularNameProvider = &GameSessionREST{}
	_ rest.TableConvertor       = &GameSessionREST{}
)

func (r *GameSessionREST) New() runtime.Object     { return &queryv1.GameSession{} }
func (r *GameSessionREST) NewList() runtime.Object { return &queryv1.GameSessionList{} }
func (r *GameSessionREST) Destroy()                {}
func (r *GameSessionREST) NamespaceScoped() bool   { return true }
func (r *GameSessionREST) GetSingularName() string { return "gamesession" }

// Get returns one game session.
func (r *GameSessionREST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	gs := r.index.Get(genericapirequest.NamespaceValue(ctx), name)
	if gs == nil {
		return nil, apierrors.NewNotFound(queryv1.SchemeGroupVersion.WithResource("gamesessions").GroupResource(), name)
	}
	return toQueryGameSession(gs), nil
}

// List answers a page from the index: in creation order, Limit at a time, Continue where the last ended.
func (r *GameSessionREST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	q, scope, err := r.query(ctx, opts)
	if err != nil {
		return nil, err
	}
	if opts != nil {
		q.Limit = int(opts.Limit)
		if opts.Continue != "" {
			v, err := r.tokens.Verify(scope, opts.Continue)
			var after search.Position
			if err != nil || json.Unmarshal([]byte(v), &after) != nil {
				return nil, apierrors.NewBadRequest("invalid continue token for this list")
			}
			q.After = &after
		}
	}
	items, next, rv := r.index.List(q)
	list := &queryv1.GameSessionList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(rv, 10)}, Items: make([]queryv1.GameSession, 0, len(items))}
	for _, gs := range items {
		list.Items = append(list.Items, *toQueryGameSession(gs))
	}
	if next != nil {
		v, _ := json.Marshal(next)
		list.Continue = r.tokens.Sign(scope, string(v))
	}
	return list, nil
}

// Watch streams the changes of the selected game sessions: from "" or "0", the current ones as ADDED
// first; from a resourceVersion, the changes after it that the index still keeps (older: 410 Expired). A
// game session entering the selection is ADDED, one leaving it DELETED. A client too slow to take its
// events is ended (it lists and watches again).
func (r *GameSessionREST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	q, _, err := r.query(ctx, opts)
	if err != nil {
		return nil, err
	}
	var rv uint64
	if opts != nil && opts.ResourceVersion != "" {
		if rv, err = strconv.ParseUint(opts.ResourceVersion, 10, 64); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", opts.ResourceVersion))
		}
	}
	user := ""
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		user = u.GetName()
	}
	if err := r.watches.acquire(user); err != nil {
		return nil, err
	}
	w, replay, _, ok := r.index.Watch(rv)
	if !ok {
		r.watches.release(user)
		return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d", rv))
	}
	gw := &gameSessionWatch{out: make(chan watch.Event, 16), done: make(chan struct{}), w: w, release: func() { r.watches.release(user) }}
	var initial []*gamev1.GameSession
	if rv == 0 {
		initial, _, _ = r.index.List(q)
	}
	go gw.run(ctx, q, initial, replay)
	return gw, nil
}

// gameSessionWatch turns the index's events into the watch events of one selection.
type gameSessionWatch struct {
	out     chan watch.Event
	done    chan struct{}
	once    sync.Once
	w       *search.Watcher
	release func()
}

func (g *gameSessionWatch) ResultChan() <-chan watch.Event { return g.out }

func (g *gameSessionWatch) Stop() {
	g.once.Do(func() {
		close(g.done)
		g.w.Stop()
		g.release()
	})
}

func (g *gameSessionWatch) run(ctx context.Context, q search.ListQuery, initial []*gamev1.GameSession, replay []search.Event) {
	defer close(g.out)
	defer g.Stop()
	send := func(t watch.EventType, gs *gamev1.GameSession) bool {
		select {
		case g.out <- watch.Event{Type: t, Object: toQueryGameSession(gs)}:
			return true
		case <-g.done:
		case <-ctx.Done():
		}
		return false
	}
	event := func(e search.Event) bool {
		was, is := e.Old != nil && q.Matches(e.Old), e.Type != watch.Deleted && q.Matches(e.New)
		switch {
		case was && is:
			return send(watch.Modified, e.New)
		case is:
			return send(watch.Added, e.New)
		case was:
			return send(watch.Deleted, e.New)
		}
		return true
	}
	for _, gs := range initial {
		if !send(watch.Added, gs) {
			return
		}
	}
	for _, e := range replay {
		if !event(e) {
			return
		}
	}
	for {
		select {
		case e, ok := <-g.w.Events():
			if !ok { // too far behind
				expired := apierrors.NewResourceExpired("the watch fell behind; list and watch again").Status()
				select {
				case g.out <- watch.Event{Type: watch.Error, Object: &expired}:
				case <-g.done:
				}
				return
			}
			if !event(e) {
				return
			}
		case <-g.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// query turns the request's namespace and selectors into a search.ListQuery, and the scope a continue
// token is bound to (the namespace and the selectors).
func (r *GameSessionREST) query(ctx context.Context, opts *metainternalversion.ListOptions) (search.ListQuery, string, error) {
	q := search.ListQuery{Namespace: genericapirequest.NamespaceValue(ctx)}
	scope := "gamesessions/" + q.Namespace
	if opts == nil {
		return q, scope, nil
	}
	q.Labels = opts.LabelSelector
	if opts.LabelSelector != nil {
		scope += "/l=" + opts.LabelSelector.String()
	}
	if opts.FieldSelector == nil {
		return q, scope, nil
	}
	scope += "/f=" + opts.FieldSelector.String()
	var filter search.Expr
	nothing := false
	set := func(field *string, value string) {
		if *field != "" && *field != value {
			nothing = true
		}
		*field = value
	}
	for _, req := range opts.FieldSelector.Requirements() {
		if req.Operator != selection.Equals && req.Operator != selection.DoubleEquals {
			return q, scope, apierrors.NewBadRequest(fmt.Sprintf("field selector %s: only = and == are supported", req.Field))
		}
		field, value, err := convertGameSessionFieldLabel(req.Field, req.Value)
		if err != nil {
			return q, scope, apierrors.NewBadRequest(err.Error())
		}
		switch field {
		case gsFieldName:
			set(&q.Name, value)
		case gsFieldNamespace:
			ns := q.Namespace
			set(&ns, value)
			q.Namespace = ns
		case gsFieldFleet:
			set(&q.FleetID, value)
		case gsFieldStatus:
			status := string(q.Status)
			set(&status, value)
			q.Status = gamev1.GameSessionStatusValue(status)
		default:
			c, err := search.Equals(field, value)
			if err != nil {
				return q, scope, apierrors.NewBadRequest(fmt.Sprintf("field selector %s: %v", req.Field, err))
			}
			if filter == nil {
				filter = c
			} else {
				filter = search.And{X: filter, Y: c}
			}
		}
	}
	if nothing { // contradictory selectors: a name no object has
		q.Name = "\x00"
	}
	q.Filter = filter
	return q, scope, nil
}

func toQueryGameSession(gs *gamev1.GameSession) *queryv1.GameSession {
	return &queryv1.GameSession{ObjectMeta: *gs.ObjectMeta.DeepCopy(), Spec: *gs.Spec.DeepCopy(), Status: *gs.Status.DeepCopy()}
}

// ConvertToTable renders the kubectl table: the CRD's columns.
func (r *GameSessionREST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the game session"},
		{Name: "Status", Type: "string", Description: "ACTIVATING, ACTIVE, TERMINATING, TERMINATED or ERROR"},
		{Name: "Fleet", Type: "string", Description: "spec.fleetId"},
		{Name: "Players", Type: "integer", Description: "status.currentPlayerSessionCount"},
		{Name: "Max", Type: "integer", Description: "spec.maximumPlayerSessionCount"},
		{Name: "Age", Type: "string", Description: "Time since creation"},
		{Name: "Endpoint", Type: "string", Priority: 1, Description: "status.ipAddress"},
		{Name: "Port", Type: "integer", Priority: 1, Description: "status.port"},
		{Name: "GameSessionId", Type: "string", Priority: 1, Description: "status.gameSessionId"},
	}}
	return table, fillTable(table, obj, func(o runtime.Object) (metav1.TableRow, bool) {
		gs, ok := o.(*queryv1.GameSession)
		if !ok {
			return metav1.TableRow{}, false
		}
		return metav1.TableRow{
			Cells: []any{gs.Name, string(gs.Status.Status), gs.Spec.FleetID, int64(gs.Status.CurrentPlayerSessionCount), int64(gs.Spec.MaximumPlayerSessionCount),
				ageCell(gs.CreationTimestamp), gs.Status.IPAddress, portCell(gs.Status.Port), gs.Status.GameSessionID},
			Object: runtime.RawExtension{Object: gs},
		}, true
	})
}
