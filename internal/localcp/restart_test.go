package localcp_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/testenv"
)

// TestRestart: etcd and kube-apiserver restart with their data and certificates; a client made before
// keeps working, and what was written before is still there.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	cp := testenv.ControlPlane(t, localcp.Options{})
	c, err := client.New(cp.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kept"}, Data: map[string]string{"k": "v"}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	for name, restart := range map[string]func(time.Duration) error{"etcd": cp.RestartEtcd, "kube-apiserver": cp.RestartAPIServer} {
		if err := restart(100 * time.Millisecond); err != nil {
			t.Fatalf("restarting %s: %v", name, err)
		}
		var got corev1.ConfigMap
		deadline := time.Now().Add(30 * time.Second)
		for err = c.Get(ctx, client.ObjectKeyFromObject(cm), &got); err != nil && time.Now().Before(deadline); err = c.Get(ctx, client.ObjectKeyFromObject(cm), &got) {
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || got.Data["k"] != "v" {
			t.Fatalf("after restarting %s: %v, %v", name, err, got.Data)
		}
	}
}
