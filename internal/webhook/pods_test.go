package webhook

import (
	"context"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// TestPodDefaulter: the SDK's environment and the compute name of a Pod that opts in, and the refusals,
// each with its reason.
func TestPodDefaulter(t *testing.T) {
	pod := func(name, generateName string, labels, annotations map[string]string, env ...corev1.EnvVar) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, GenerateName: generateName, Labels: labels, Annotations: maps.Clone(annotations)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "game", Env: env}, {Name: "sidecar"}}}}
	}
	fleet := map[string]string{gamev1.FleetIDAnnotation: "fleet-1"}
	for _, tc := range []struct {
		name     string
		d        PodDefaulter
		pod      *corev1.Pod
		refusal  string
		compute  string // the compute name, or a prefix ending in "-" for a generated one
		fleet    string
		hostEnv  string // the first container's GAMELIFT_SDK_HOST_ID
		withCA   bool
		override string // the first container's GAMELIFT_SDK_WEBSOCKET_URL
	}{
		{name: "named Pod", d: PodDefaulter{SDKEndpoint: "wss://op:9091"}, pod: pod("game-1", "", nil, fleet),
			compute: "game-1", fleet: "fleet-1", hostEnv: "game-1", override: "wss://op:9091"},
		{name: "dots become dashes", d: PodDefaulter{SDKEndpoint: "wss://op:9091"}, pod: pod("game.eu.1", "", nil, fleet),
			compute: "game-eu-1", fleet: "fleet-1", hostEnv: "game-eu-1", override: "wss://op:9091"},
		{name: "generated name", d: PodDefaulter{SDKEndpoint: "wss://op:9091"}, pod: pod("", "match-", nil, fleet),
			compute: "match-", fleet: "fleet-1", override: "wss://op:9091"},
		{name: "an Agones GameServer's Pod: its Fleet", d: PodDefaulter{SDKEndpoint: "wss://op:9091", WithCA: true},
			pod:     pod("arena-x7k2p-abcde", "", map[string]string{"agones.dev/fleet": "arena"}, nil),
			compute: "arena-x7k2p-abcde", fleet: "arena", hostEnv: "arena-x7k2p-abcde", withCA: true, override: "wss://op:9091"},
		{name: "the container's own variable is kept", d: PodDefaulter{SDKEndpoint: "wss://op:9091"},
			pod:     pod("game-1", "", nil, fleet, corev1.EnvVar{Name: "GAMELIFT_SDK_WEBSOCKET_URL", Value: "wss://elsewhere"}),
			compute: "game-1", fleet: "fleet-1", hostEnv: "game-1", override: "wss://elsewhere"},
		{name: "no fleet", d: PodDefaulter{SDKEndpoint: "wss://op:9091"}, pod: pod("game-1", "", nil, nil),
			refusal: "names no fleet: set the annotation game.playersessions.dev/fleet-id"},
		{name: "the SDK's WebSocket is off", d: PodDefaulter{}, pod: pod("game-1", "", nil, fleet),
			refusal: "the operator's SDK WebSocket is off"},
		{name: "a fleet id too long", d: PodDefaulter{SDKEndpoint: "wss://op:9091"}, pod: pod("game-1", "", nil, map[string]string{gamev1.FleetIDAnnotation: strings.Repeat("f", 129)}),
			refusal: "at most 128 characters"},
		{name: "a compute name set by hand that is none", d: PodDefaulter{SDKEndpoint: "wss://op:9091"},
			pod: pod("game-1", "", nil, map[string]string{gamev1.FleetIDAnnotation: "f", gamev1.ComputeNameAnnotation: "a/b/c"}), refusal: "is no compute name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Default(context.Background(), tc.pod)
			if tc.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refusal) {
					t.Fatalf("got %v, want a refusal with %q", err, tc.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			compute := tc.pod.Annotations[gamev1.ComputeNameAnnotation]
			if strings.HasSuffix(tc.compute, "-") {
				if !strings.HasPrefix(compute, tc.compute) || len(compute) != len(tc.compute)+5 {
					t.Errorf("compute name %q, want %q and 5 characters", compute, tc.compute)
				}
			} else if compute != tc.compute {
				t.Errorf("compute name %q, want %q", compute, tc.compute)
			}
			if got := tc.pod.Annotations[gamev1.FleetIDAnnotation]; got != tc.fleet {
				t.Errorf("fleet %q, want %q", got, tc.fleet)
			}
			for _, c := range tc.pod.Spec.Containers {
				env := map[string]corev1.EnvVar{}
				for _, v := range c.Env {
					if _, twice := env[v.Name]; twice {
						t.Errorf("container %s: %s twice", c.Name, v.Name)
					}
					env[v.Name] = v
				}
				if env["GAMELIFT_SDK_HOST_ID"].Value != compute || env["GAMELIFT_SDK_FLEET_ID"].Value != tc.fleet ||
					env["GAMELIFT_SDK_PROCESS_ID"].ValueFrom.FieldRef.FieldPath != "metadata.name" ||
					env["GAMELIFT_SDK_AUTH_TOKEN"].ValueFrom.SecretKeyRef.Name != "gamelift-sdk-"+compute {
					t.Errorf("container %s: env %v", c.Name, c.Env)
				}
				if _, ok := env["SSL_CERT_DIR"]; ok != tc.withCA || (len(c.VolumeMounts) == 1) != tc.withCA {
					t.Errorf("container %s: CA mounted %v, want %v", c.Name, ok, tc.withCA)
				}
			}
			if got := tc.pod.Spec.Containers[0].Env[0].Value; got != tc.override && tc.pod.Spec.Containers[0].Env[0].Name == "GAMELIFT_SDK_WEBSOCKET_URL" {
				t.Errorf("GAMELIFT_SDK_WEBSOCKET_URL %q, want %q", got, tc.override)
			}
			again := tc.pod.DeepCopy() // a reinvocation changes nothing
			if err := tc.d.Default(context.Background(), again); err != nil || len(again.Spec.Containers[0].Env) != len(tc.pod.Spec.Containers[0].Env) ||
				len(again.Spec.Volumes) != len(tc.pod.Spec.Volumes) || again.Annotations[gamev1.ComputeNameAnnotation] != compute {
				t.Errorf("reinvoked: %v, %+v", err, again.Spec)
			}
		})
	}
}
