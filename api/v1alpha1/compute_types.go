package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ComputeStatusValue is a compute's state, as GameLift names it.
// +kubebuilder:validation:Enum=PENDING;ACTIVE;TERMINATING
type ComputeStatusValue string

const (
	// ComputeActive: registered; its processes may connect.
	ComputeActive ComputeStatusValue = "ACTIVE"
)

// ServerProcessStatusValue is a game server process's state on its compute.
// +kubebuilder:validation:Enum=ACTIVE;TERMINATED
type ServerProcessStatusValue string

const (
	// ServerProcessActive: the process called ProcessReady and may host a game session.
	ServerProcessActive ServerProcessStatusValue = "ACTIVE"
	// ServerProcessTerminated: the process called ProcessEnding, or was lost. Terminal.
	ServerProcessTerminated ServerProcessStatusValue = "TERMINATED"
)

// ComputeSpec is a compute of a fleet, as GameLift's RegisterCompute takes it: a host (a pod, a machine)
// whose game server processes, linked with the GameLift Server SDK v5, connect to the operator.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a compute's registration is immutable: deregister it and register again"
type ComputeSpec struct {
	// fleetId is the fleet the compute serves.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-z]*fleet-[a-zA-Z0-9\-]+$`
	FleetID string `json:"fleetId"`

	// computeName is GameLift's name of the compute (the SDK's HostId), unique in the fleet.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9\-]+(\/[a-zA-Z0-9\-]+)?$`
	ComputeName string `json:"computeName"`

	// ipAddress is where players reach the compute's processes (with dnsName, one of them at least).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	IPAddress string `json:"ipAddress,omitempty"`

	// dnsName is the compute's DNS name, when it has one.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DNSName string `json:"dnsName,omitempty"`

	// location is GameLift's location of the compute (for Anywhere fleets, a custom location).
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Location string `json:"location,omitempty"`

	// certificatePath is the path of the compute's TLS certificate on the compute (GetComputeCertificate).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	CertificatePath string `json:"certificatePath,omitempty"`
}

// ComputeAuthToken is an auth token issued for the compute (GetComputeAuthToken): only its SHA-256 is kept.
type ComputeAuthToken struct {
	// sha256 is the hex SHA-256 of the token.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SHA256 string `json:"sha256"`

	// expirationTime is when the token stops being accepted.
	// +required
	ExpirationTime metav1.Time `json:"expirationTime"`
}

// ServerProcess is a game server process of the compute, as its SDK registered it (ProcessReady).
type ServerProcess struct {
	// processId is the SDK's process id (pID).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	ProcessID string `json:"processId"`

	// status is ACTIVE once the process called ProcessReady, TERMINATED once it called ProcessEnding.
	// +required
	Status ServerProcessStatusValue `json:"status"`

	// port is where the process takes players.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// logPaths are the process's log files, as it reported them.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	LogPaths []string `json:"logPaths,omitempty"`

	// unhealthy is true when the process's last health check (OnHealthCheck, sent with its heartbeat)
	// reported it unhealthy: it gets no new game session. Written when it changes, not at each heartbeat.
	// +optional
	Unhealthy bool `json:"unhealthy,omitempty"`

	// sdk is the SDK's language and version ("Go 5.6.0").
	// +optional
	// +kubebuilder:validation:MaxLength=64
	SDK string `json:"sdk,omitempty"`

	// activationTime is when the process called ProcessReady.
	// +optional
	ActivationTime *metav1.Time `json:"activationTime,omitempty"`

	// terminationTime is when the process called ProcessEnding, or was found lost.
	// +optional
	TerminationTime *metav1.Time `json:"terminationTime,omitempty"`

	// terminationReason is why the process is TERMINATED: ProcessEnding (it said so), or ConnectionLost
	// (its connection was lost and it did not come back within the reconnection grace period).
	// +optional
	TerminationReason ServerProcessTerminationReason `json:"terminationReason,omitempty"`

	// connection is the process's connection to the operator: which replica holds it, since when, and
	// when it closed without ProcessEnding. The leader finds a lost process from it and the replicas'
	// Leases.
	// +optional
	Connection *ProcessConnection `json:"connection,omitempty"`
}

// ServerProcessTerminationReason is why a process is TERMINATED.
// +kubebuilder:validation:Enum=ProcessEnding;ConnectionLost
type ServerProcessTerminationReason string

const (
	// ProcessEndingReason: the process called ProcessEnding.
	ProcessEndingReason ServerProcessTerminationReason = "ProcessEnding"
	// ConnectionLostReason: the process's connection was lost and it did not reconnect in time.
	ConnectionLostReason ServerProcessTerminationReason = "ConnectionLost"
)

// ProcessConnection is a process's connection to one replica of the operator.
type ProcessConnection struct {
	// replica is the name of the replica's Lease (internal/replicas), and holder the holder identity of
	// the run of that replica that holds the connection: a replica that restarted (another holder), or
	// whose Lease expired, holds it no more.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Replica string `json:"replica"`
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Holder string `json:"holder"`

	// connectionTime is when the process connected to that replica.
	// +required
	ConnectionTime metav1.Time `json:"connectionTime"`

	// disconnectionTime is when that connection closed without ProcessEnding (the process has that long,
	// plus the grace period, to connect again).
	// +optional
	DisconnectionTime *metav1.Time `json:"disconnectionTime,omitempty"`
}

// ComputeTokenSecret is the Secret holding the auth token of a Pod's compute.
type ComputeTokenSecret struct {
	// name is the Secret's name, in the compute's namespace; its key "token" holds the token.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// expirationTime is when the token in it expires.
	// +required
	ExpirationTime metav1.Time `json:"expirationTime"`
}

// The Kubernetes way to run a GameLift Server SDK game server: a Pod labelled GameLiftSDKLabel="true" gets,
// from the operator's webhook, the SDK's environment (GAMELIFT_SDK_WEBSOCKET_URL, _FLEET_ID, _HOST_ID,
// _PROCESS_ID, and _AUTH_TOKEN from the Secret TokenSecretName(compute)), and, from its controller, a
// Compute of its own (its IP) and that Secret.
const (
	// GameLiftSDKLabel opts a Pod in.
	GameLiftSDKLabel = "game.playersessions.dev/gamelift-sdk"
	// FleetIDAnnotation names the Pod's fleet (default: the Agones Fleet of an Agones GameServer's Pod, its
	// label agones.dev/fleet).
	FleetIDAnnotation = "game.playersessions.dev/fleet-id"
	// ComputeNameAnnotation is the Pod's compute name (the webhook sets it: the Pod's name, or one made from
	// its generateName).
	ComputeNameAnnotation = "game.playersessions.dev/compute-name"
	// TokenSecretKey is the key of the token in a Pod's token Secret, TokenSecretCAKey of the CA of the
	// operator's WebSocket (when it serves TLS).
	TokenSecretKey   = "token"
	TokenSecretCAKey = "ca.crt"
	// TokenSecretLabel marks the token Secrets the operator writes (config/policy lets it write no other
	// Secret outside its namespace).
	TokenSecretLabel = "game.playersessions.dev/compute-token"
)

// TokenSecretName is the name of the Secret holding the auth token of the Pod whose compute is named
// computeName.
func TokenSecretName(computeName string) string { return "gamelift-sdk-" + computeName }

// ComputeStatus is the observed state of a compute. The GameLift endpoint writes it.
type ComputeStatus struct {
	// computeStatus is GameLift's state of the compute.
	// +optional
	ComputeStatus ComputeStatusValue `json:"computeStatus,omitempty"`

	// computeArn is the compute's GameLift-style ARN.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	ComputeArn string `json:"computeArn,omitempty"`

	// authTokens are the unexpired auth tokens issued for the compute (hashes), newest last.
	// +optional
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	AuthTokens []ComputeAuthToken `json:"authTokens,omitempty"`

	// servedTokenRequests are the signed GetComputeAuthToken requests served within their signatures' 5
	// minutes ("REQUEST@UNIXSECONDS"), so that a captured request replayed to any replica gets no token.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=atomic
	ServedTokenRequests []string `json:"servedTokenRequests,omitempty"`

	// tokenSecret is the Secret where the operator keeps an auth token for the compute's Pod (a Pod that
	// opted in with the label GameLiftSDKLabel), and when that token expires: the operator writes a fresh
	// one before then.
	// +optional
	TokenSecret *ComputeTokenSecret `json:"tokenSecret,omitempty"`

	// processes are the game server processes of the compute that called ProcessReady (GameLift runs at
	// most 50 on one compute).
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=map
	// +listMapKey=processId
	Processes []ServerProcess `json:"processes,omitempty"`
}

// Compute is a compute of a GameLift fleet: a host whose game server processes, linked with the GameLift
// Server SDK v5, connect to the operator with the compute's auth tokens. RegisterCompute creates it;
// DeregisterCompute deletes it. The object's name derives from the fleet and the compute name.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=compute,categories=gamesessions
// +kubebuilder:selectablefield:JSONPath=".spec.fleetId"
// +kubebuilder:printcolumn:name="Fleet",type=string,JSONPath=".spec.fleetId"
// +kubebuilder:printcolumn:name="Compute",type=string,JSONPath=".spec.computeName"
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=".status.computeStatus"
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=".spec.ipAddress"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type Compute struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the compute's registration.
	// +required
	Spec ComputeSpec `json:"spec"`

	// status is the observed state of the compute.
	// +optional
	Status ComputeStatus `json:"status,omitempty"`
}

// ComputeList is a list of Computes.
//
// +kubebuilder:object:root=true
type ComputeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Compute `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Compute{}, &ComputeList{})
}
