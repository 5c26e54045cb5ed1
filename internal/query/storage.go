package query

import (
	"context"
	"fmt"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/index"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
)

// fieldAliases maps every accepted field-selector name to its canonical one: the short names, and the CRD's
// paths so a selector written for `kubectl get psess` works here too.
var fieldAliases = map[string]string{
	"metadata.name":          index.FieldName,
	"metadata.namespace":     index.FieldNamespace,
	"playerSessionId":        index.FieldPlayerSessionID,
	"status.playerSessionId": index.FieldPlayerSessionID,
	"gameSessionId":          index.FieldGameSessionID,
	"status.gameSessionId":   index.FieldGameSessionID,
	"gameSessionName":        index.FieldGameSessionName,
	"spec.gameSessionName":   index.FieldGameSessionName,
	"playerId":               index.FieldPlayerID,
	"spec.playerId":          index.FieldPlayerID,
	"status":                 index.FieldStatus,
	"status.status":          index.FieldStatus,
}

// convertFieldLabel is the field-label conversion of the query API's PlayerSession: without it, every field
// selector but metadata.name and metadata.namespace is refused.
func convertFieldLabel(label, value string) (string, string, error) {
	if canonical, ok := fieldAliases[label]; ok {
		return canonical, value, nil
	}
	return "", "", fmt.Errorf("field label not supported: %s (supported: metadata.name, metadata.namespace, playerSessionId, gameSessionId, gameSessionName, playerId, status)", label)
}

// REST is the read-only storage of query.playersessions.dev/v1alpha1 playersessions.
type REST struct {
	index   *index.Index
	tokens  *index.Tokens
	history index.History // nil: live sessions only
	watches *watchLimits
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Getter               = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Watcher              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.TableConvertor       = &REST{}
)

func (r *REST) New() runtime.Object     { return &queryv1.PlayerSession{} }
func (r *REST) NewList() runtime.Object { return &queryv1.PlayerSessionList{} }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return true }
func (r *REST) GetSingularName() string { return "playersession" }

// Get returns one player session.
func (r *REST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ps, err := r.index.GetAll(ctx, genericapirequest.NamespaceValue(ctx), name, r.history)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if ps == nil {
		return nil, apierrors.NewNotFound(queryv1.SchemeGroupVersion.WithResource("playersessions").GroupResource(), name)
	}
	return toQuery(ps), nil
}

// List answers a list from the index.
func (r *REST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	q, opts, err := r.query(ctx, opts)
	if err != nil {
		return nil, err
	}
	lo := index.ListOptions{Limit: opts.Limit, Continue: opts.Continue, ResourceVersion: opts.ResourceVersion, ResourceVersionMatch: opts.ResourceVersionMatch}
	page, err := r.index.ListAll(ctx, q, lo, r.tokens, r.history)
	if err != nil {
		return nil, err
	}
	list := &queryv1.PlayerSessionList{
		ListMeta: metav1.ListMeta{ResourceVersion: strconv.FormatUint(page.RV, 10), Continue: page.Continue},
		Items:    make([]queryv1.PlayerSession, 0, len(page.Items)),
	}
	for _, ps := range page.Items {
		list.Items = append(list.Items, *toQuery(ps))
	}
	return list, nil
}

// Watch streams the changes of the selected player sessions.
func (r *REST) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	q, opts, err := r.query(ctx, opts)
	if err != nil {
		return nil, err
	}
	wo := index.WatchOptions{ResourceVersion: opts.ResourceVersion, SendInitialEvents: opts.SendInitialEvents, AllowBookmarks: opts.AllowWatchBookmarks}
	user := ""
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		user = u.GetName()
	}
	if err := r.watches.acquire(user); err != nil {
		return nil, err
	}
	w, err := r.index.Watch(ctx, q, wo, func(t watch.EventType, ps *gamev1.PlayerSession) watch.Event {
		return watch.Event{Type: t, Object: toQuery(ps)}
	})
	if err != nil {
		r.watches.release(user)
		return nil, err
	}
	return &limitedWatch{Interface: w, release: func() { r.watches.release(user) }}, nil
}

// query turns the request's namespace and selectors into an index.Query. Only equality is supported on
// fields. It also returns opts, never nil (empty options when the request had none).
func (r *REST) query(ctx context.Context, opts *metainternalversion.ListOptions) (index.Query, *metainternalversion.ListOptions, error) {
	q := index.Query{Namespace: genericapirequest.NamespaceValue(ctx), Fields: map[string]string{}}
	if opts == nil {
		opts = &metainternalversion.ListOptions{}
	}
	q.Labels = opts.LabelSelector
	if opts.FieldSelector == nil {
		return q, opts, nil
	}
	for _, req := range opts.FieldSelector.Requirements() {
		if req.Operator != selection.Equals && req.Operator != selection.DoubleEquals {
			return q, opts, apierrors.NewBadRequest(fmt.Sprintf("field selector %s: only = and == are supported", req.Field))
		}
		field, value, err := convertFieldLabel(req.Field, req.Value)
		if err != nil {
			return q, opts, apierrors.NewBadRequest(err.Error())
		}
		if prev, ok := q.Fields[field]; ok && prev != value {
			q.Fields[field] = "\x00" // contradictory: matches nothing
			continue
		}
		q.Fields[field] = value
	}
	if ns, ok := q.Fields[index.FieldNamespace]; ok {
		if q.Namespace != "" && q.Namespace != ns {
			q.Fields[index.FieldNamespace] = "\x00"
		} else {
			q.Namespace = ns
		}
	}
	return q, opts, nil
}

func toQuery(ps *gamev1.PlayerSession) *queryv1.PlayerSession {
	return &queryv1.PlayerSession{ObjectMeta: ps.ObjectMeta, Spec: ps.Spec, Status: ps.Status}
}

// ConvertToTable renders the kubectl table: the CRD's columns.
func (r *REST) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{ColumnDefinitions: []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the player session"},
		{Name: "Status", Type: "string", Description: "RESERVED, ACTIVE, COMPLETED or TIMEDOUT"},
		{Name: "Player", Type: "string", Description: "spec.playerId"},
		{Name: "GameSession", Type: "string", Description: "spec.gameSessionName"},
		{Name: "Age", Type: "string", Description: "Time since creation"},
		{Name: "Endpoint", Type: "string", Priority: 1, Description: "status.ipAddress"},
		{Name: "Port", Type: "integer", Priority: 1, Description: "status.port"},
		{Name: "PlayerSessionId", Type: "string", Priority: 1, Description: "status.playerSessionId"},
	}}
	return table, fillTable(table, obj, func(o runtime.Object) (metav1.TableRow, bool) {
		ps, ok := o.(*queryv1.PlayerSession)
		if !ok {
			return metav1.TableRow{}, false
		}
		return metav1.TableRow{
			Cells:  []any{ps.Name, string(ps.Status.Status), ps.Spec.PlayerID, ps.Spec.GameSessionName, ageCell(ps.CreationTimestamp), ps.Status.IPAddress, portCell(ps.Status.Port), ps.Status.PlayerSessionID},
			Object: runtime.RawExtension{Object: ps},
		}, true
	})
}

// fillTable sets table's rows from obj, one object or a list of them (with the list's resourceVersion and
// continue token), each row by row (false: not an object of the table's kind).
func fillTable(table *metav1.Table, obj runtime.Object, row func(runtime.Object) (metav1.TableRow, bool)) error {
	items := []runtime.Object{obj}
	if list, ok := obj.(metav1.ListInterface); ok {
		table.ResourceVersion, table.Continue = list.GetResourceVersion(), list.GetContinue()
		var err error
		if items, err = apimeta.ExtractList(obj); err != nil {
			return err
		}
	} else if o, ok := obj.(metav1.Object); ok {
		table.ResourceVersion = o.GetResourceVersion()
	}
	for _, item := range items {
		r, ok := row(item)
		if !ok {
			return fmt.Errorf("unexpected object %T", item)
		}
		table.Rows = append(table.Rows, r)
	}
	return nil
}

// ageCell is a table's Age cell of a creation time.
func ageCell(created metav1.Time) string {
	if created.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(created.Time))
}

// portCell is a table's Port cell (none when 0).
func portCell(port int32) any {
	if port == 0 {
		return nil
	}
	return int64(port)
}
