// Package computes holds what the GameLift endpoint (RegisterCompute, GetComputeAuthToken, ...) and the
// game-server backend (the Server SDK's connections) share about computes: the name of a compute's object,
// its auth tokens, minted at random and kept only as SHA-256 hashes, and the claims on its processes.
package computes

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/indexes"
)

// ObjectName is the name of the Compute object of a compute of a fleet: readable (the compute name,
// lowercased, "/" as "-") and unique (a hash of the fleet and the compute name), at most 49 characters.
func ObjectName(fleetID, computeName string) string {
	sum := sha256.Sum256([]byte(fleetID + "/" + computeName))
	base := strings.Trim(strings.ToLower(strings.ReplaceAll(computeName, "/", "-")), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	if base == "" {
		base = "compute"
	}
	return base + "-" + hex.EncodeToString(sum[:4])
}

// DefaultTokenTTL is how long an auth token is valid, as GameLift's are.
const DefaultTokenTTL = 3 * time.Hour

// MaxTokens is how many unexpired tokens a compute keeps (a new one drops the oldest beyond it).
const MaxTokens = 4

// NewToken mints an auth token: 48 characters of [a-z0-9], which GameLift's pattern ^[a-zA-Z0-9-]{1,64}$
// admits, from 240 random bits.
func NewToken() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// Hash is what a compute keeps of a token.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Valid reports whether c holds token unexpired at now.
func Valid(c *gamev1.Compute, token string, now time.Time) bool {
	h := []byte(Hash(token))
	ok := false
	for _, t := range c.Status.AuthTokens {
		if subtle.ConstantTimeCompare(h, []byte(t.SHA256)) == 1 && now.Before(t.ExpirationTime.Time) {
			ok = true
		}
	}
	return ok
}

// WithToken returns c's tokens with token added, expiring at expires: the expired ones dropped, and the
// oldest beyond MaxTokens.
func WithToken(tokens []gamev1.ComputeAuthToken, token string, now, expires time.Time) []gamev1.ComputeAuthToken {
	var kept []gamev1.ComputeAuthToken
	for _, t := range tokens {
		if now.Before(t.ExpirationTime.Time) {
			kept = append(kept, t)
		}
	}
	kept = append(kept, gamev1.ComputeAuthToken{SHA256: Hash(token), ExpirationTime: metav1.NewTime(expires)})
	if len(kept) > MaxTokens {
		kept = kept[len(kept)-MaxTokens:]
	}
	return kept
}

// Idle reports whether a process may take a game session: ACTIVE (ProcessReady), healthy, and not claimed
// (holding none). (Whether its connection is alive is the Leases' to say: replicas.Lost.)
func Idle(sp gamev1.ServerProcess, claimed bool) bool {
	return sp.Status == gamev1.ServerProcessActive && !claimed && !sp.Unhealthy
}

// ClaimName is the name of the ProcessClaim of process pid of the Compute object named compute: readable
// (the compute's object name, at most 49 characters) and unique (a hash of the process id), at most 62.
func ClaimName(compute, pid string) string {
	sum := sha256.Sum256([]byte(pid))
	return compute + "-" + hex.EncodeToString(sum[:6])
}

// Claim is the ProcessClaim that places gs on process pid of c; c owns it, so that it goes with c.
func Claim(c *gamev1.Compute, pid string, gs *gamev1.GameSession) *gamev1.ProcessClaim {
	return &gamev1.ProcessClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: ClaimName(c.Name, pid), OwnerReferences: []metav1.OwnerReference{{
			APIVersion: gamev1.GroupVersion.String(), Kind: "Compute", Name: c.Name, UID: c.UID}}},
		Spec: gamev1.ProcessClaimSpec{Compute: c.Name, ProcessID: pid, GameSessionName: gs.Name, GameSessionUID: string(gs.UID)},
	}
}

// Claims are the claims on c's processes, by process id, as r shows them (the cache's objects: read only).
func Claims(ctx context.Context, r client.Reader, c *gamev1.Compute) (map[string]*gamev1.ProcessClaim, error) {
	var list gamev1.ProcessClaimList
	if err := r.List(ctx, &list, client.InNamespace(c.Namespace), client.MatchingFields{indexes.ProcessClaimCompute: c.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	m := make(map[string]*gamev1.ProcessClaim, len(list.Items))
	for i := range list.Items {
		m[list.Items[i].Spec.ProcessID] = &list.Items[i]
	}
	return m, nil
}

// IdleIn reports whether the fleet has registered computes in the namespace, and whether one of them has
// an idle process that is not known to be disconnected, as r (the cache) shows them: what CreateGameSession
// and a placement check before they ask for a game session there (the leader also checks the replica
// holding the process's connection before it places one).
func IdleIn(ctx context.Context, r client.Reader, namespace, fleet string) (registered, idle bool, err error) {
	var list gamev1.ComputeList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexes.ComputeFleetID: fleet}, client.UnsafeDisableDeepCopy); err != nil {
		return false, false, err
	}
	for i := range list.Items { // the cache's objects: read only
		c := &list.Items[i]
		claimed, err := Claims(ctx, r, c)
		if err != nil {
			return true, false, err
		}
		for _, sp := range c.Status.Processes {
			if Idle(sp, claimed[sp.ProcessID] != nil) && (sp.Connection == nil || sp.Connection.DisconnectionTime == nil) {
				return true, true, nil
			}
		}
	}
	return len(list.Items) > 0, false, nil
}

// IdleProcess is an idle process (Idle) of a compute.
type IdleProcess struct {
	Compute *gamev1.Compute
	Process gamev1.ServerProcess
}

// IdleProcesses are the idle processes (Idle) of fleet's computes in namespace as r (the cache) shows them,
// by compute name and process id; the computes are r's objects: read only.
func IdleProcesses(ctx context.Context, r client.Reader, namespace, fleet string) ([]IdleProcess, error) {
	var list gamev1.ComputeList
	if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{indexes.ComputeFleetID: fleet}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	var idle []IdleProcess
	for i := range list.Items {
		c := &list.Items[i]
		claimed, err := Claims(ctx, r, c)
		if err != nil {
			return nil, err
		}
		for _, sp := range c.Status.Processes {
			if Idle(sp, claimed[sp.ProcessID] != nil) {
				idle = append(idle, IdleProcess{Compute: c, Process: sp})
			}
		}
	}
	slices.SortFunc(idle, func(a, b IdleProcess) int {
		return cmp.Or(cmp.Compare(a.Compute.Name, b.Compute.Name), cmp.Compare(a.Process.ProcessID, b.Process.ProcessID))
	})
	return idle, nil
}

// Holds reports whether claim cl (nil: none) places the game session gs on its process.
func Holds(cl *gamev1.ProcessClaim, gs *gamev1.GameSession) bool {
	return cl != nil && cl.Spec.GameSessionUID == string(gs.UID) && cl.Spec.GameSessionName == gs.Name
}
