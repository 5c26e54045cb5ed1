package webhook

import (
	"context"
	"crypto/rand"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

// PodPath is where the Pod webhook is served.
const PodPath = "/mutate--v1-pod"

// The objectSelector limits the webhook to the Pods that opt in; failurePolicy Fail: such a Pod without
// its environment could not start its game server (its controller, a ReplicaSet or Agones, creates it again).
// +kubebuilder:webhook:path=/mutate--v1-pod,mutating=true,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=mpod.gamelift.playersessions.dev,admissionReviewVersions=v1,timeoutSeconds=5,reinvocationPolicy=IfNeeded,patch=`{"objectSelector":{"matchLabels":{"game.playersessions.dev/gamelift-sdk":"true"}}}`

// agonesFleetLabel is the label with which Agones names the Fleet of a GameServer and of its Pod.
const agonesFleetLabel = "agones.dev/fleet"

// computeNamePattern is RegisterCompute's ComputeName without the slash: a Pod's name made fit.
var computeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9-]{1,128}$`)

// PodDefaulter gives a Pod that opts in (label gamev1.GameLiftSDKLabel="true") the environment of the
// GameLift Server SDK v5, so an unmodified game server in it connects to the operator:
// GAMELIFT_SDK_WEBSOCKET_URL, _FLEET_ID, _HOST_ID (its compute: the Pod's name), _PROCESS_ID (the Pod's
// name, by the downward API) and _AUTH_TOKEN (from the Secret gamev1.TokenSecretName(compute), which the
// operator writes once the Pod has its IP: the kubelet starts the containers once it exists). A variable a
// container sets itself is kept. The Pod's fleet is its annotation gamev1.FleetIDAnnotation, or its Agones
// Fleet; the compute name is recorded in gamev1.ComputeNameAnnotation.
type PodDefaulter struct {
	// SDKEndpoint is the URL of the operator's Server SDK WebSocket, as Pods reach it (empty: the SDK's
	// WebSocket is off, and every such Pod is refused).
	SDKEndpoint string
	// WithCA mounts the CA of the WebSocket's certificate (the key gamev1.TokenSecretCAKey of the Pod's
	// token Secret) into each container at CAPath, and points SSL_CERT_DIR at its folder, so that a game
	// server trusts a certificate of the operator's own CA (Go adds that folder to the system's CA files;
	// an OpenSSL-based SDK reads SSL_CERT_FILE or its own option instead).
	WithCA bool
}

// CAPath is where a game server container finds the CA of the operator's WebSocket.
const CAPath = "/etc/ssl/playersessions/ca.crt"

// Default fills a Pod's SDK environment, or refuses the Pod with the reason.
func (d *PodDefaulter) Default(ctx context.Context, pod *corev1.Pod) error {
	if d.SDKEndpoint == "" {
		return fmt.Errorf("pod opts in to the GameLift Server SDK (label %s) but the operator's SDK WebSocket is off (--gamelift-sdk-bind-address)", gamev1.GameLiftSDKLabel)
	}
	fleet := pod.Annotations[gamev1.FleetIDAnnotation]
	if fleet == "" {
		fleet = pod.Labels[agonesFleetLabel]
	}
	if fleet == "" {
		return fmt.Errorf("pod opts in to the GameLift Server SDK (label %s) but names no fleet: set the annotation %s", gamev1.GameLiftSDKLabel, gamev1.FleetIDAnnotation)
	}
	if len(fleet) > 128 {
		return fmt.Errorf("annotation %s: a fleet id has at most 128 characters", gamev1.FleetIDAnnotation)
	}
	compute := pod.Annotations[gamev1.ComputeNameAnnotation] // set on a first invocation
	if compute == "" {
		compute = computeNameOf(pod)
	}
	if !computeNamePattern.MatchString(compute) {
		return fmt.Errorf("annotation %s: %q is no compute name (letters, digits and dashes, at most 128)", gamev1.ComputeNameAnnotation, compute)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[gamev1.FleetIDAnnotation], pod.Annotations[gamev1.ComputeNameAnnotation] = fleet, compute
	env := []corev1.EnvVar{
		{Name: "GAMELIFT_SDK_WEBSOCKET_URL", Value: d.SDKEndpoint},
		{Name: "GAMELIFT_SDK_FLEET_ID", Value: fleet},
		{Name: "GAMELIFT_SDK_HOST_ID", Value: compute},
		{Name: "GAMELIFT_SDK_PROCESS_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "GAMELIFT_SDK_AUTH_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: gamev1.TokenSecretName(compute)}, Key: gamev1.TokenSecretKey}}},
	}
	const caVolume = "playersessions-gamelift-ca"
	if d.WithCA {
		env = append(env, corev1.EnvVar{Name: "SSL_CERT_DIR", Value: path.Dir(CAPath)})
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == caVolume }) {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: caVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: gamev1.TokenSecretName(compute), Items: []corev1.KeyToPath{{Key: gamev1.TokenSecretCAKey, Path: gamev1.TokenSecretCAKey}}}}})
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, v := range env {
			if !hasEnv(c, v.Name) {
				c.Env = append(c.Env, v)
			}
		}
		if d.WithCA && !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == caVolume }) {
			// A file, not the folder: a Secret volume's files are symbolic links into it, which Go's
			// SSL_CERT_DIR reading skips.
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: caVolume, MountPath: CAPath, SubPath: gamev1.TokenSecretCAKey, ReadOnly: true})
		}
	}
	ctrl.LoggerFrom(ctx).V(1).Info("A game server Pod gets the GameLift Server SDK's environment", "fleet", fleet, "compute", compute)
	return nil
}

func hasEnv(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// computeNameOf is the Pod's name, or, for a Pod named by the API server (generateName), its prefix and
// five random characters, as the API server would add them; dots become dashes.
func computeNameOf(pod *corev1.Pod) string {
	name := pod.Name
	if name == "" {
		const alphabet = "bcdfghjklmnpqrstvwxz2456789" // the API server's, without vowels
		b := make([]byte, 5)
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		name = strings.TrimSuffix(pod.GenerateName, "-") + "-" + string(b)
	}
	return strings.ReplaceAll(name, ".", "-")
}
