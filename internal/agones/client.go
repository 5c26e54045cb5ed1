package agones

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Client is the operator's access to Agones. Until Agones' CRDs are installed it reports Installed false and
// nobody reads GameServers; the Discoverer flips it, without a restart, when they appear.
type Client struct {
	// Cache reads GameServers from the manager's informer cache.
	Cache client.Reader
	// Live reads from the API server, to confirm a final decision or to find a lost allocation.
	Live client.Reader
	// Dynamic creates GameServerAllocations (an aggregated API with one verb: no RESTMapper needed).
	Dynamic dynamic.Interface

	mu        sync.Mutex
	installed bool
	onInstall []func() error
}

// NewClient builds a Client on the manager's cache and API reader.
func NewClient(cfg *rest.Config, cache, live client.Reader) (*Client, error) {
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{Cache: cache, Live: live, Dynamic: d}, nil
}

// Installed reports whether the agones.dev GameServer API was discovered.
func (c *Client) Installed() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.installed
}

// OnInstall runs f once Agones is installed (at once if it already is): the controllers start their
// GameServer watches there.
func (c *Client) OnInstall(f func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.installed {
		return f()
	}
	c.onInstall = append(c.onInstall, f)
	return nil
}

// SetInstalled marks Agones installed and runs the waiting callbacks (the Discoverer calls it; tests may).
func (c *Client) SetInstalled() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.installed {
		return nil
	}
	for _, f := range c.onInstall {
		if err := f(); err != nil {
			return err
		}
	}
	c.installed, c.onInstall = true, nil
	return nil
}

// GameServer reads a GameServer, from the cache or live; nil when there is none.
func (c *Client) GameServer(ctx context.Context, key client.ObjectKey, live bool) (*GameServer, error) {
	reader := c.Cache
	if live {
		reader = c.Live
	}
	u := NewGameServer()
	if err := reader.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	gs := Parse(u)
	return &gs, nil
}

// AllocatedFor finds, live, the GameServer an earlier allocation gave the game session with this UID (its
// answer may have been lost); nil when there is none. Of several, the newest allocation wins.
func (c *Client) AllocatedFor(ctx context.Context, namespace, gameSessionUID string) (*GameServer, error) {
	return allocatedFor(ctx, c.Live, namespace, gameSessionUID)
}

func allocatedFor(ctx context.Context, reader client.Reader, namespace, gameSessionUID string) (*GameServer, error) {
	list := NewGameServerList()
	if err := reader.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{GameSessionUIDLabel: gameSessionUID}); err != nil {
		return nil, err
	}
	var found []GameServer
	for i := range list.Items {
		if gs := Parse(&list.Items[i]); !gs.Deleting && gs.State != StateShutdown {
			found = append(found, gs)
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	newest := slices.MaxFunc(found, func(a, b GameServer) int {
		return compareTimes(a.LastAllocated, b.LastAllocated)
	})
	return &newest, nil
}

// AllocatedForCached is AllocatedFor from the cache: no request, but possibly behind the API server.
func (c *Client) AllocatedForCached(ctx context.Context, namespace, gameSessionUID string) (*GameServer, error) {
	return allocatedFor(ctx, c.Cache, namespace, gameSessionUID)
}

// ReadyServers are the names of the Ready GameServers of fleet in the cache that match one of selectors
// (none: the whole fleet), which an allocation from it could get.
func (c *Client) ReadyServers(ctx context.Context, namespace, fleet string, selectors []metav1.LabelSelector) ([]string, error) {
	list := NewGameServerList()
	if err := c.Cache.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{FleetLabel: fleet}); err != nil {
		return nil, err
	}
	var ready []string
	for i := range list.Items {
		u := &list.Items[i]
		if gs := Parse(u); gs.State == StateReady && !gs.Deleting && Matches(u.GetLabels(), selectors) {
			ready = append(ready, gs.Name)
		}
	}
	return ready, nil
}

// Matches reports whether a GameServer with these labels matches one of selectors (none: every one).
func Matches(lbls map[string]string, selectors []metav1.LabelSelector) bool {
	if len(selectors) == 0 {
		return true
	}
	for i := range selectors {
		if sel, err := metav1.LabelSelectorAsSelector(&selectors[i]); err == nil && sel.Matches(labels.Set(lbls)) {
			return true
		}
	}
	return false
}

func compareTimes(a, b string) int {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	switch {
	case errA != nil || errB != nil:
		return 0
	case ta.Before(tb):
		return -1
	case ta.After(tb):
		return 1
	}
	return 0
}

// Allocate creates the GameServerAllocation and returns Agones' answer: the state (Allocated, UnAllocated,
// Contention) and, when Allocated, the GameServer's name.
func (c *Client) Allocate(ctx context.Context, r AllocationRequest) (state, gameServerName string, err error) {
	out, err := c.Dynamic.Resource(GameServerAllocationGVR).Namespace(r.Namespace).Create(ctx, Allocation(r), metav1.CreateOptions{})
	if err != nil {
		return "", "", err
	}
	state, gameServerName = AllocationResult(out)
	if state == AllocationAllocated && gameServerName == "" {
		return "", "", fmt.Errorf("GameServerAllocation answered Allocated without a gameServerName")
	}
	return state, gameServerName, nil
}

// SetState writes a GameServer's status.state, as Agones' SDK server does for the game server's Ready() and
// Shutdown() (sdkserver.go: the one field, in a JSON patch of the main resource guarded by a test of the
// resourceVersion the decision was made on; the GameServer has no status subresource).
func (c *Client) SetState(ctx context.Context, namespace string, gs *GameServer, state string) error {
	patch, err := json.Marshal([]map[string]any{
		{"op": "test", "path": "/metadata/resourceVersion", "value": gs.ResourceVersion},
		{"op": "replace", "path": "/status/state", "value": state},
	})
	if err != nil {
		return err
	}
	_, err = c.Dynamic.Resource(GameServerGVR).Namespace(namespace).Patch(ctx, gs.Name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "playersessions-manager"})
	return err
}

// FleetExists reports, live, whether an Agones Fleet of that name is in the namespace (false when Agones is
// not installed).
func (c *Client) FleetExists(ctx context.Context, namespace, name string) (bool, error) {
	if !c.Installed() {
		return false, nil
	}
	if err := c.Live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, NewFleet()); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return true, nil
}

// Discoverer is a manager runnable (on every replica) that polls discovery until the agones.dev/v1
// gameservers resource appears, then marks the Client installed. Agones may be installed before or after
// the manager (GitOps applies in any order).
type Discoverer struct {
	Client    *Client
	Discovery discovery.DiscoveryInterface
	// Interval between looks (10 s when zero).
	Interval time.Duration
}

// Start polls until Agones is found or ctx ends.
func (d *Discoverer) Start(ctx context.Context) error {
	interval := d.Interval
	if interval == 0 {
		interval = 10 * time.Second
	}
	log := ctrl.LoggerFrom(ctx).WithName("agones")
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if found, err := d.found(); err != nil {
			log.V(1).Info("Looking for Agones", "error", err.Error())
		} else if found {
			log.Info("Agones is installed: binding game sessions to GameServers")
			return d.Client.SetInstalled()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection is false: every replica's GameLift endpoint needs to know whether Agones is there.
func (d *Discoverer) NeedLeaderElection() bool { return false }

func (d *Discoverer) found() (bool, error) {
	resources, err := d.Discovery.ServerResourcesForGroupVersion(GameServerGVK.GroupVersion().String())
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	for _, r := range resources.APIResources {
		if r.Name == "gameservers" {
			return true, nil
		}
	}
	return false, nil
}
