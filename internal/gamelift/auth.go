package gamelift

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Access keys are Secrets with the label AccessKeyLabel=true in the manager's access-key namespace
// (Server.KeyNamespace), each naming in its label TenantLabel the namespace (tenant) its calls act in. They
// live beside the manager, not in the tenants' namespaces, so that the manager's token may read the Secrets
// of one namespace only (docs/security.md, finding 4).
const (
	DefaultKeyNamespace   = "playersessions-system"
	AccessKeyLabel        = "gamelift.playersessions.dev/access-key"
	TenantLabel           = "gamelift.playersessions.dev/tenant"
	AccessKeyIDField      = "accessKeyId"
	SecretAccessKeyField  = "secretAccessKey"
	IndexAccessKeyID      = "data.accessKeyId"
	maxClockSkew          = 5 * time.Minute
	signingAlgorithm      = "AWS4-HMAC-SHA256"
	signingService        = "gamelift"
	amzDateFormat         = "20060102T150405Z"
	unauthorizedSignature = "The request signature we calculated does not match the signature you provided"
)

// NewAccessKey is the access-key Secret name in keyNamespace (the manager's access-key namespace) of the key
// id with its secret, acting in the namespace tenant.
func NewAccessKey(keyNamespace, name, tenant, id, secret string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: keyNamespace, Name: name,
			Labels: map[string]string{AccessKeyLabel: "true", TenantLabel: tenant}},
		Data: map[string][]byte{AccessKeyIDField: []byte(id), SecretAccessKeyField: []byte(secret)},
	}
}

// CreateAccessKey creates the access-key Secret of NewAccessKey, and its namespace when it is missing.
func CreateAccessKey(ctx context.Context, c client.Client, keyNamespace, name, tenant, id, secret string) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: keyNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return c.Create(ctx, NewAccessKey(keyNamespace, name, tenant, id, secret))
}

// AccessKeyIDOf is the field index function of access-key Secrets.
func AccessKeyIDOf(o client.Object) []string {
	if s, ok := o.(*corev1.Secret); ok {
		if id := string(s.Data[AccessKeyIDField]); id != "" {
			return []string{id}
		}
	}
	return nil
}

// caller is who signed a request: the namespace (tenant) of its access key, and the signature itself.
type caller struct {
	keyID     string
	namespace string
	signature string
	signedAt  time.Time
}

// mustSign are the headers a request must have signed, as AWS requires: the host and the date always; the
// content type and the JSON protocol's X-Amz-Target when the request has them (the target names the
// action: unsigned, a captured AcceptPlayerSession could be replayed as RemovePlayerSession).
var mustSign = []string{"host", "x-amz-date", "content-type", "x-amz-target"}

// authenticate verifies the request's SigV4 signature with aws-sdk-go-v2's signer and returns who signed it.
func (s *Server) authenticate(ctx context.Context, r *http.Request, body []byte) (caller, *Error) {
	unauthorized := func(msg string) (caller, *Error) { return caller{}, errorf(UnauthorizedException, msg) }
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, signingAlgorithm+" ") {
		return unauthorized("Missing or unsupported authentication: requests must be signed with AWS Signature Version 4")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, signingAlgorithm+" "), ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["Signature"] == "" || fields["SignedHeaders"] == "" {
		return unauthorized("Malformed Authorization header")
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	for _, h := range mustSign {
		if (h == "host" || h == "x-amz-date" || r.Header.Get(h) != "") && !slices.Contains(signed, h) {
			return unauthorized("The request must sign the header " + h + " (SignedHeaders lacks it)")
		}
	}
	keyID, region, service := scope[0], scope[2], scope[3]
	if service != signingService {
		return unauthorized("Credential should be scoped to the service 'gamelift'")
	}
	signedAt, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return unauthorized("Missing or malformed X-Amz-Date")
	}
	if skew := s.Clock.Since(signedAt); skew > maxClockSkew || skew < -maxClockSkew {
		return unauthorized("Signature expired: the request was signed at " + signedAt.Format(time.RFC3339) + ", more than 5 minutes from the server's time")
	}
	if signedAt.Format("20060102") != scope[1] {
		return unauthorized("Credential date does not match X-Amz-Date")
	}
	namespace, secret, ok := s.lookupKey(ctx, keyID)
	if !ok {
		return unauthorized("The security token included in the request is invalid: unknown access key " + keyID)
	}

	// Re-sign a copy of the request holding exactly the headers the client signed, and compare.
	check, err := http.NewRequestWithContext(ctx, r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return unauthorized("Malformed request")
	}
	check.Host = r.Host
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			check.ContentLength = int64(len(body))
		default:
			check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, check, hex.EncodeToString(sum[:]), service, region, signedAt); err != nil {
		return unauthorized("Cannot verify the signature")
	}
	_, want, _ := strings.Cut(check.Header.Get("Authorization"), "Signature=")
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return unauthorized(unauthorizedSignature)
	}
	return caller{keyID: keyID, namespace: namespace, signature: fields["Signature"], signedAt: signedAt}, nil
}

// objectName names an object that the signed request creates (or records, for an update): prefix, a dash and
// 20 hex digits of the SHA-256 of the signature and part (the object's place in the call), at most 63
// characters. Served again, by any replica, the request finds its name taken: the API server is the memory
// that replicas share for replays (an AcceptPlayerSession or RemovePlayerSession needs none: its transition
// happens once).
func (c caller) objectName(prefix string, part int) string {
	sum := sha256.Sum256([]byte(c.signature + "/" + strconv.Itoa(part)))
	if len(prefix) > 42 {
		prefix = strings.TrimRight(prefix[:42], "-.")
	}
	return prefix + "-" + hex.EncodeToString(sum[:10])
}

// replayed is the answer to a signed request that changes state, served before.
func replayed() *Error {
	return errorf(UnauthorizedException, "This signed request was already served: a call that changes state is served once per signature (sign it again to repeat it)")
}

// replays remembers the signatures of the calls that change state until they can no longer be accepted
// (maxClockSkew after they were made), so that a captured request is served once: sent again within the
// window, it is refused. Each replica keeps its own, a first and cheap line; across replicas, the names of
// what the request created (caller.objectName) catch it.
type replays struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]time.Time // signature -> when it stops being accepted
	next time.Time                       // when to drop the expired ones
}

// first reports whether a call signed with signature at signedAt is seen for the first time.
func (g *replays) first(signature string, signedAt, now time.Time) bool {
	key := sha256.Sum256([]byte(signature))
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[[sha256.Size]byte]time.Time{}
	}
	if !now.Before(g.next) {
		for k, until := range g.seen {
			if !now.Before(until) {
				delete(g.seen, k)
			}
		}
		g.next = now.Add(time.Minute)
	}
	if _, ok := g.seen[key]; ok {
		return false
	}
	g.seen[key] = signedAt.Add(maxClockSkew)
	return true
}

// AccessKey is the tenant and the secret of an access key, as the endpoint authenticates it (for the Server
// SDK's SigV4 form, which the game-server backend verifies).
func (s *Server) AccessKey(ctx context.Context, keyID string) (tenant, secret string, ok bool) {
	return s.lookupKey(ctx, keyID)
}

// lookupKey finds the Secret of an access key through the cache's index, in the access-key namespace only,
// and returns the tenant its label names. A key id that more than one Secret holds is refused for all of
// them, never resolved to whichever a list returns first: the caller answers it as it answers an unknown key,
// and each Secret gets a Warning event naming the others (at most once per keyEventInterval per key
// id). So is a key whose tenant label is missing or not a namespace name (config/policy/access_keys.yaml
// refuses such a Secret; this guards the keys written before it).
func (s *Server) lookupKey(ctx context.Context, keyID string) (tenant, secret string, ok bool) {
	var list corev1.SecretList
	if err := s.Reader.List(ctx, &list, client.InNamespace(s.KeyNamespace),
		client.MatchingFields{IndexAccessKeyID: keyID}, client.HasLabels{AccessKeyLabel}); err != nil {
		return "", "", false
	}
	var found []*corev1.Secret
	for i := range list.Items {
		sec := &list.Items[i]
		if sec.Namespace == s.KeyNamespace && string(sec.Data[AccessKeyIDField]) == keyID && len(sec.Data[SecretAccessKeyField]) > 0 {
			found = append(found, sec)
		}
	}
	switch len(found) {
	case 0:
		return "", "", false
	case 1:
		tenant := found[0].Labels[TenantLabel]
		if errs := validation.IsDNS1123Label(tenant); len(errs) > 0 {
			s.reportKey(ctx, keyID, found, "AccessKeyWithoutTenant", "Access key id %[1]s is refused: its label "+TenantLabel+
				" must name the namespace it acts in ("+strings.Join(errs, "; ")+")")
			return "", "", false
		}
		return tenant, string(found[0].Data[SecretAccessKeyField]), true
	}
	s.reportKey(ctx, keyID, found, "AmbiguousAccessKey", "Access key id %[1]s is held by several Secrets (%[2]s): it is refused for all of them until only one holds it")
	return "", "", false
}

// keyEventInterval bounds how often a refused key id is reported.
const keyEventInterval = 10 * time.Minute

// reportKey logs and records on each of secrets why keyID is refused (format: %[1]s is the key id, %[2]s the
// Secrets' names).
func (s *Server) reportKey(ctx context.Context, keyID string, secrets []*corev1.Secret, reason, format string) {
	now := s.Clock.Now()
	s.keyEventsMu.Lock()
	if last, ok := s.keyEvents[keyID]; ok && now.Sub(last) < keyEventInterval {
		s.keyEventsMu.Unlock()
		return
	}
	if s.keyEvents == nil {
		s.keyEvents = map[string]time.Time{}
	}
	s.keyEvents[keyID] = now
	s.keyEventsMu.Unlock()
	names := make([]string, 0, len(secrets))
	for _, sec := range secrets {
		names = append(names, sec.Namespace+"/"+sec.Name)
	}
	slices.Sort(names)
	msg := fmt.Sprintf(format, keyID, strings.Join(names, ", "))
	ctrl.LoggerFrom(ctx).Info("Refusing an access key", "reason", reason, "secrets", names)
	if s.Recorder == nil {
		return
	}
	for _, sec := range secrets {
		s.Recorder.Eventf(sec, nil, corev1.EventTypeWarning, reason, "Authenticate", "%s", msg)
	}
}
