package index

import (
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The continue-token key that replicas share is a Secret the first replica creates in its own namespace.
// +kubebuilder:rbac:groups="",namespace=playersessions-system,resources=secrets,verbs=get;create

// TokenKeyField is the data key of the continue-token key in its Secret.
const TokenKeyField = "key"

// EnsureTokenKey returns the key that signs the query API's and the GameLift endpoint's continue tokens,
// shared by every replica through the Secret at key: the first replica to start creates it with a random
// key; the others, also when they start at the same moment, read the one that won the create (the API
// server lets only one create succeed). c must read from the API server, not from a cache.
func EnsureTokenKey(ctx context.Context, c client.Client, key types.NamespacedName) ([]byte, error) {
	for range 5 {
		var s corev1.Secret
		err := c.Get(ctx, key, &s)
		switch {
		case err == nil && len(s.Data[TokenKeyField]) >= 32:
			return s.Data[TokenKeyField], nil
		case err == nil:
			return nil, fmt.Errorf("secret %s holds no continue-token key in %q (32 bytes or more)", key, TokenKeyField)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading the continue-token key %s: %w", key, err)
		}
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return nil, err
		}
		s = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{"app.kubernetes.io/name": "playersessions"}},
			Data: map[string][]byte{TokenKeyField: fresh}}
		switch err := c.Create(ctx, &s); {
		case err == nil:
			return fresh, nil
		case !apierrors.IsAlreadyExists(err):
			return nil, fmt.Errorf("creating the continue-token key %s: %w", key, err)
		}
		// Another replica created it first: read theirs.
	}
	return nil, fmt.Errorf("the continue-token key %s keeps changing", key)
}
