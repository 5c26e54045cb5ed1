// Command benchagones measures the Agones bridge on an embedded local control plane (real etcd and
// kube-apiserver, the Agones CRDs of test/crds/agones, the manager in this process): N player sessions on G
// Agones GameServers, the game servers' SDK sidecars appending each player to the players List as the
// player connects and deleting it as the player leaves, in the SDK's batches (-batch values per GameServer
// write every -interval, staggered across GameServers). It reports how late each player session's new
// status (ACTIVE, then COMPLETED) becomes visible to a watching client after the List write that caused it
// was sent. See docs/benchmarks.md.
//
//	KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go run ./hack/benchagones -players 1000 -gameservers 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/hack/benchutil"
	"github.com/playersessions/operator/internal/agones"
	"github.com/playersessions/operator/internal/agones/agonestest"
	"github.com/playersessions/operator/internal/localcp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchagones:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		players, servers, batch int
		interval                time.Duration
		qps                     float64
	)
	flag.IntVar(&players, "players", 1000, "Player sessions, spread evenly over the GameServers (at most 200 per GameServer).")
	flag.IntVar(&servers, "gameservers", 10, "Agones GameServers, one game session each.")
	flag.IntVar(&batch, "batch", 5, "List values each GameServer's SDK sidecar writes per batch.")
	flag.DurationVar(&interval, "interval", 500*time.Millisecond, "Time between two batches of one GameServer (the sidecar's --request-rate-limit is 500 ms).")
	flag.Float64Var(&qps, "kube-api-qps", 200, "The manager's client QPS (its --kube-api-qps).")
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.Level(zapcore.WarnLevel)))
	perServer := players / servers
	if perServer < 1 || perServer > 200 {
		return fmt.Errorf("players per GameServer must be 1..200, got %d", perServer)
	}

	cp, stopCP, err := benchutil.ControlPlane(localcp.Options{CRDDirectoryPaths: []string{"test/crds/agones"}})
	if err != nil {
		return err
	}
	defer stopCP()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The manager under test, as cmd/manager builds it.
	mcfg := *cp.Config
	mcfg.QPS, mcfg.Burst = float32(qps), int(2*qps)
	opts := benchutil.ManagerOptions()
	opts.AgonesDiscoveryInterval = 100 * time.Millisecond
	opts.Controllers.PlayerSessionTimeout = time.Hour
	if _, err := benchutil.StartManager(ctx, &mcfg, opts); err != nil {
		return err
	}

	// The players' side: an admin client and a separate informer that timestamps when each player session's
	// status becomes visible.
	var mu sync.Mutex
	seen := map[gamev1.PlayerSessionStatusValue]map[string]time.Time{
		gamev1.PlayerSessionReserved: {}, gamev1.PlayerSessionActive: {}, gamev1.PlayerSessionCompleted: {},
	}
	c, err := benchutil.Observe(ctx, cp.Config, func(ps *gamev1.PlayerSession) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if m := seen[ps.Status.Status]; m != nil {
			if _, ok := m[ps.Status.PlayerSessionID]; !ok {
				m[ps.Status.PlayerSessionID] = now
			}
		}
	})
	if err != nil {
		return err
	}
	count := func(s gamev1.PlayerSessionStatusValue) int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[s])
	}

	const ns = "bench"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for i := range servers {
		name := fmt.Sprintf("gs-%d", i)
		if _, err := agonestest.CreateGameServer(ctx, c, agonestest.GameServerOptions{Namespace: ns, Name: name, State: agones.StateAllocated,
			Address: fmt.Sprintf("10.0.0.%d", i+1), Lists: []string{"players"}}); err != nil {
			return err
		}
		gs := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("game-%d", i)},
			Spec: gamev1.GameSessionSpec{FleetID: "fleet-bench", MaximumPlayerSessionCount: int32(perServer), Agones: &gamev1.AgonesGameServer{GameServerName: name}}}
		if err := c.Create(ctx, gs); err != nil {
			return err
		}
	}
	if err := benchutil.WaitFor(ctx, time.Minute, func() bool {
		var list gamev1.GameSessionList
		_ = c.List(ctx, &list, client.InNamespace(ns))
		active := 0
		for _, gs := range list.Items {
			if gs.Status.Status == gamev1.GameSessionActive {
				active++
			}
		}
		return active == servers
	}); err != nil {
		return fmt.Errorf("game sessions not ACTIVE: %w", err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perServer {
				ps := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p-%d-%d", i, j)},
					Spec: gamev1.PlayerSessionSpec{GameSessionName: fmt.Sprintf("game-%d", i), PlayerID: fmt.Sprintf("player-%d-%d", i, j)}}
				if err := c.Create(ctx, ps); err != nil {
					fmt.Fprintln(os.Stderr, "create:", err)
				}
			}
		}()
	}
	wg.Wait()
	total := servers * perServer
	if err := benchutil.WaitFor(ctx, 2*time.Minute, func() bool { return count(gamev1.PlayerSessionReserved) == total }); err != nil {
		return fmt.Errorf("%d of %d player sessions RESERVED: %w", count(gamev1.PlayerSessionReserved), total, err)
	}
	fmt.Printf("%d player sessions RESERVED on %d game sessions in %s\n", total, servers, time.Since(start).Round(time.Millisecond))

	// The ids each game server learns from its players (the CreatePlayerSession answer).
	ids := make([][]string, servers)
	var list gamev1.PlayerSessionList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, ps := range list.Items {
		var i int
		_, _ = fmt.Sscanf(ps.Spec.GameSessionName, "game-%d", &i)
		ids[i] = append(ids[i], ps.Status.PlayerSessionID)
	}

	for _, phase := range []struct {
		to     gamev1.PlayerSessionStatusValue
		append bool
	}{{gamev1.PlayerSessionActive, true}, {gamev1.PlayerSessionCompleted, false}} {
		sent := sidecars(ctx, c, ns, ids, batch, interval, phase.append)
		if err := benchutil.WaitFor(ctx, 2*time.Minute, func() bool { return count(phase.to) == total }); err != nil {
			return fmt.Errorf("%d of %d player sessions %s: %w", count(phase.to), total, phase.to, err)
		}
		mu.Lock()
		late := make([]time.Duration, 0, total)
		for id, at := range sent {
			late = append(late, seen[phase.to][id].Sub(at))
		}
		mu.Unlock()
		fmt.Printf("List write -> %-9s (%d, %d values per write every %s per GameServer): %s\n", phase.to, len(late), batch, interval, benchutil.Summary(late))
	}
	return nil
}

// sidecars plays one SDK sidecar per GameServer: every interval, one List write with the next batch values
// (appended or deleted), the GameServers' writes staggered over the interval. It returns when each value's
// write was sent.
func sidecars(ctx context.Context, c client.Client, ns string, ids [][]string, batch int, interval time.Duration, add bool) map[string]time.Time {
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var wg sync.WaitGroup
	for i, values := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * interval / time.Duration(len(ids)))
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for chunk := range slices.Chunk(values, batch) {
				at := time.Now()
				var err error
				if add {
					err = agonestest.AppendListValues(ctx, c, ns, fmt.Sprintf("gs-%d", i), "players", chunk...)
				} else {
					err = agonestest.DeleteListValues(ctx, c, ns, fmt.Sprintf("gs-%d", i), "players", chunk...)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "list write:", err)
				}
				mu.Lock()
				for _, v := range chunk {
					sent[v] = at
				}
				mu.Unlock()
				<-tick.C
			}
		}()
	}
	wg.Wait()
	return sent
}
