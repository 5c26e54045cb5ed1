// Package agonestest plays Agones' part in tests and benchmarks: it writes GameServers as the Agones
// controller and the SDK sidecar would (Agones v1.60: test/crds/agones/README.md), and serves
// allocation.agones.dev/v1 GameServerAllocation with Agones' semantics, for a local control plane with the
// Agones CRDs installed and no Agones running. Only tests and hack/ programs import it.
package agonestest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/agones"
)

// GameServerOptions describe a GameServer as the Agones controller leaves it once it is Ready.
type GameServerOptions struct {
	Namespace, Name, Fleet string
	Labels                 map[string]string
	// State is Ready when empty.
	State   string
	Address string
	// Ports are status.ports (name -> port), in order; one "default" port 7654 when nil.
	Ports []agones.Port
	// Lists are declared with capacity 1000 and no values (Agones copies spec.lists to status.lists).
	Lists []string
}

// CreateGameServer creates a GameServer with its status (the GameServer CRD has no status subresource, and
// a create keeps the status it is sent).
func CreateGameServer(ctx context.Context, c client.Client, o GameServerOptions) (*unstructured.Unstructured, error) {
	u, err := GameServerObject(o)
	if err != nil {
		return nil, err
	}
	return u, c.Create(ctx, u)
}

// GameServerObject is the GameServer CreateGameServer creates.
func GameServerObject(o GameServerOptions) (*unstructured.Unstructured, error) {
	if o.State == "" {
		o.State = agones.StateReady
	}
	if o.Ports == nil {
		o.Ports = []agones.Port{{Name: "default", Port: 7654}}
	}
	lbls := map[string]any{}
	for k, v := range o.Labels {
		lbls[k] = v
	}
	if o.Fleet != "" {
		lbls[agones.FleetLabel] = o.Fleet
	}
	var specPorts, statusPorts []any
	for _, p := range o.Ports {
		specPorts = append(specPorts, map[string]any{"name": p.Name, "containerPort": int64(p.Port), "portPolicy": "Dynamic"})
		statusPorts = append(statusPorts, map[string]any{"name": p.Name, "port": int64(p.Port)})
	}
	specLists, statusLists := map[string]any{}, map[string]any{}
	for _, l := range o.Lists {
		specLists[l] = map[string]any{"capacity": int64(1000)}
		statusLists[l] = map[string]any{"capacity": int64(1000), "values": []any{}}
	}
	status := map[string]any{"state": o.State, "ports": statusPorts, "lists": statusLists}
	if o.Address != "" {
		status["address"] = o.Address
	}
	u := agones.NewGameServer()
	u.Object["metadata"] = map[string]any{"namespace": o.Namespace, "name": o.Name, "labels": lbls}
	if o.State == agones.StateAllocated {
		setAnnotation(u, agones.LastAllocatedAnnotation, time.Now().UTC().Format(time.RFC3339Nano))
	}
	u.Object["spec"] = map[string]any{
		"ports": specPorts, "lists": specLists,
		"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "game", "image": "game:1"}}}},
	}
	u.Object["status"] = status
	return u, nil
}

// Update reads the GameServer and writes mutate's change with an optimistic-concurrency update, retrying on
// conflict, as the Agones controller does.
func Update(ctx context.Context, c client.Client, ns, name string, mutate func(u *unstructured.Unstructured) error) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := agones.NewGameServer()
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return err
		}
		if err := mutate(u); err != nil {
			return err
		}
		return c.Update(ctx, u)
	})
}

// SetState sets status.state, as the controller (Shutdown, Unhealthy, Error) or the SDK (Ready(),
// Allocate()) would. Allocate() also rewrites agones.dev/last-allocated.
func SetState(ctx context.Context, c client.Client, ns, name, state string) error {
	return Update(ctx, c, ns, name, func(u *unstructured.Unstructured) error {
		if state == agones.StateAllocated {
			setAnnotation(u, agones.LastAllocatedAnnotation, time.Now().UTC().Format(time.RFC3339Nano))
		}
		return unstructured.SetNestedField(u.Object, state, "status", "state")
	})
}

// AppendListValues and DeleteListValues change a List as the SDK sidecar's batched write does: one JSON
// patch of the main resource guarded by a test of metadata.resourceVersion, computed as the current values
// minus deletes plus appends, deduplicated and truncated to capacity (sdkserver.go updateList).
func AppendListValues(ctx context.Context, c client.Client, ns, name, list string, values ...string) error {
	return patchList(ctx, c, ns, name, list, values, nil)
}

// DeleteListValues removes values from a List (see AppendListValues).
func DeleteListValues(ctx context.Context, c client.Client, ns, name, list string, values ...string) error {
	return patchList(ctx, c, ns, name, list, nil, values)
}

// ChangeList applies appends and deletes in one SDK write.
func ChangeList(ctx context.Context, c client.Client, ns, name, list string, add, del []string) error {
	return patchList(ctx, c, ns, name, list, add, del)
}

func patchList(ctx context.Context, c client.Client, ns, name, list string, add, del []string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		u := agones.NewGameServer()
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return err
		}
		capacity, _, _ := unstructured.NestedInt64(u.Object, "status", "lists", list, "capacity")
		current, _, _ := unstructured.NestedStringSlice(u.Object, "status", "lists", list, "values")
		values := slices.DeleteFunc(current, func(v string) bool { return slices.Contains(del, v) })
		for _, v := range add {
			if !slices.Contains(values, v) {
				values = append(values, v)
			}
		}
		if int64(len(values)) > capacity {
			values = values[:capacity]
		}
		patch, _ := json.Marshal([]map[string]any{
			{"op": "test", "path": "/metadata/resourceVersion", "value": u.GetResourceVersion()},
			{"op": "replace", "path": "/status/lists/" + list + "/values", "value": values},
		})
		err := c.Patch(ctx, u, client.RawPatch(types.JSONPatchType, patch))
		if apierrors.IsInvalid(err) && strings.Contains(err.Error(), "test operation") {
			return apierrors.NewConflict(agones.GameServerAllocationGVR.GroupResource(), name, err)
		}
		return err
	})
}

// SetPlayerIDs writes the legacy status.players (PlayerTracking), replacing ids, as the sidecar does.
func SetPlayerIDs(ctx context.Context, c client.Client, ns, name string, ids ...string) error {
	return Update(ctx, c, ns, name, func(u *unstructured.Unstructured) error {
		vs := make([]any, 0, len(ids))
		for _, id := range ids {
			vs = append(vs, id)
		}
		return unstructured.SetNestedMap(u.Object, map[string]any{"count": int64(len(ids)), "capacity": int64(100), "ids": vs}, "status", "players")
	})
}

func setAnnotation(u *unstructured.Unstructured, k, v string) {
	a := u.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[k] = v
	u.SetAnnotations(a)
}

// Allocator serves allocation.agones.dev/v1 gameserverallocations (create only) as Agones' extensions do:
// the first selector that matches a GameServer of the requested state wins; the GameServer becomes
// Allocated under optimistic concurrency, with agones.dev/last-allocated, the metadata and the list
// actions applied in the same update; the answer is 201 with the state (Allocated, UnAllocated or
// Contention) either way.
type Allocator struct {
	// Client writes GameServers (an admin client).
	Client client.Client
	// LoseAnswers makes the next n allocations happen but answer 500, as a lost response would look.
	LoseAnswers atomic.Int32

	mu          sync.Mutex // one allocation at a time, as a single extensions pod's batching does
	allocations atomic.Int32
	requests    atomic.Int32
}

// Allocations counts the GameServers allocated; Requests the allocation requests received.
func (a *Allocator) Allocations() int { return int(a.allocations.Load()) }

// Requests counts the allocation requests received.
func (a *Allocator) Requests() int { return int(a.requests.Load()) }

// ServeHTTP answers discovery and the create.
func (a *Allocator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/apis/allocation.agones.dev/v1"
	switch {
	case r.URL.Path == prefix && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "allocation.agones.dev/v1",
			APIResources: []metav1.APIResource{{Name: "gameserverallocations", Namespaced: true, Kind: "GameServerAllocation",
				Verbs: []string{"create"}, ShortNames: []string{"gsa"}}},
		})
	case strings.HasPrefix(r.URL.Path, prefix+"/namespaces/") && strings.HasSuffix(r.URL.Path, "/gameserverallocations") && r.Method == http.MethodPost:
		ns := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix+"/namespaces/"), "/gameserverallocations")
		a.create(w, r, ns)
	default:
		http.NotFound(w, r)
	}
}

func (a *Allocator) create(w http.ResponseWriter, r *http.Request, ns string) {
	a.requests.Add(1)
	gsa := &unstructured.Unstructured{}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = gsa.UnmarshalJSON(body) // integers stay int64, as the API machinery keeps them
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, metav1.Status{Status: metav1.StatusFailure, Message: err.Error(), Code: http.StatusBadRequest})
		return
	}
	a.mu.Lock()
	state, gs, err := a.allocate(r.Context(), ns, gsa)
	a.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, metav1.Status{Status: metav1.StatusFailure, Message: err.Error(), Code: http.StatusInternalServerError})
		return
	}
	if state == agones.AllocationAllocated {
		a.allocations.Add(1)
		if a.LoseAnswers.Load() > 0 && a.LoseAnswers.Add(-1) >= 0 {
			writeJSON(w, http.StatusInternalServerError, metav1.Status{Status: metav1.StatusFailure, Message: "connection reset (test)", Code: http.StatusInternalServerError})
			return
		}
	}
	status := map[string]any{"state": state}
	if gs != nil {
		status["gameServerName"] = gs.GetName()
		addr, _, _ := unstructured.NestedString(gs.Object, "status", "address")
		ports, _, _ := unstructured.NestedSlice(gs.Object, "status", "ports")
		status["address"], status["ports"], status["source"] = addr, ports, "local"
		gsa.SetName(gs.GetName())
	}
	gsa.Object["status"] = status
	gsa.SetNamespace(ns)
	writeJSON(w, http.StatusCreated, gsa.Object)
}

// allocate picks and allocates a GameServer for gsa.
func (a *Allocator) allocate(ctx context.Context, ns string, gsa *unstructured.Unstructured) (string, *unstructured.Unstructured, error) {
	selectors, _, _ := unstructured.NestedSlice(gsa.Object, "spec", "selectors")
	for _, s := range selectors {
		sel, _ := s.(map[string]any)
		ls := &metav1.LabelSelector{}
		raw, _ := json.Marshal(sel)
		_ = json.Unmarshal(raw, ls)
		selector, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return "", nil, err
		}
		want, _ := sel["gameServerState"].(string)
		if want == "" {
			want = agones.StateReady
		}
		list := agones.NewGameServerList()
		if err := a.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return "", nil, err
		}
		slices.SortFunc(list.Items, func(x, y unstructured.Unstructured) int { return strings.Compare(x.GetName(), y.GetName()) })
		for i := range list.Items {
			gs := &list.Items[i]
			if agones.Parse(gs).State != want || gs.GetDeletionTimestamp() != nil {
				continue
			}
			applyAllocation(gs, gsa)
			if err := a.Client.Update(ctx, gs); err != nil {
				if apierrors.IsConflict(err) {
					return agones.AllocationContention, nil, nil
				}
				return "", nil, err
			}
			return agones.AllocationAllocated, gs, nil
		}
	}
	return agones.AllocationUnAllocated, nil, nil
}

// applyAllocation is allocator.go's applyAllocationToGameServer: state, last-allocated, metadata, lists.
func applyAllocation(gs, gsa *unstructured.Unstructured) {
	_ = unstructured.SetNestedField(gs.Object, agones.StateAllocated, "status", "state")
	setAnnotation(gs, agones.LastAllocatedAnnotation, time.Now().UTC().Format(time.RFC3339Nano))
	lbls, _, _ := unstructured.NestedStringMap(gsa.Object, "spec", "metadata", "labels")
	if len(lbls) > 0 {
		all := gs.GetLabels()
		if all == nil {
			all = map[string]string{}
		}
		for k, v := range lbls {
			all[k] = v
		}
		gs.SetLabels(all)
	}
	ann, _, _ := unstructured.NestedStringMap(gsa.Object, "spec", "metadata", "annotations")
	for k, v := range ann {
		setAnnotation(gs, k, v)
	}
	lists, _, _ := unstructured.NestedMap(gsa.Object, "spec", "lists")
	for name, l := range lists {
		m, _ := l.(map[string]any)
		if _, declared, _ := unstructured.NestedMap(gs.Object, "status", "lists", name); !declared {
			continue // Agones only warns about an undeclared list.
		}
		if capacity, ok := m["capacity"]; ok {
			_ = unstructured.SetNestedField(gs.Object, capacity, "status", "lists", name, "capacity")
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
