package gamelift

import (
	"context"
	"regexp"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/computes"
)

// The Anywhere-style compute actions: a compute registered here is a Compute object of the tenant's
// namespace, and its game server processes connect to the Server SDK endpoint with its auth tokens
// (docs/gamelift-game-servers.md).

// Compute is GameLift's Compute shape (the fields this endpoint has).
type Compute struct {
	FleetId                    string     `json:"FleetId,omitempty"`
	FleetArn                   string     `json:"FleetArn,omitempty"`
	ComputeName                string     `json:"ComputeName,omitempty"`
	ComputeArn                 string     `json:"ComputeArn,omitempty"`
	IpAddress                  string     `json:"IpAddress,omitempty"`
	DnsName                    string     `json:"DnsName,omitempty"`
	ComputeStatus              string     `json:"ComputeStatus,omitempty"`
	Location                   string     `json:"Location,omitempty"`
	CreationTime               *Timestamp `json:"CreationTime,omitempty"`
	GameLiftServiceSdkEndpoint string     `json:"GameLiftServiceSdkEndpoint,omitempty"`
}

type computeInput struct {
	FleetId         string `json:"FleetId"`
	ComputeName     string `json:"ComputeName"`
	CertificatePath string `json:"CertificatePath"`
	DnsName         string `json:"DnsName"`
	IpAddress       string `json:"IpAddress"`
	Location        string `json:"Location"`
}

type computeOutput struct {
	Compute Compute `json:"Compute"`
}

var computeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9\-]+(\/[a-zA-Z0-9\-]+)?$`)

// computeKey validates a FleetId and ComputeName and returns the fleet and the Compute's object key.
func computeKey(namespace string, in *computeInput) (string, client.ObjectKey, *Error) {
	fleet, aerr := fleetID(in.FleetId)
	if aerr != nil {
		return "", client.ObjectKey{}, aerr
	}
	if err := checkPattern("computeName", in.ComputeName, 128, computeNamePattern, `^[a-zA-Z0-9\-]+(\/[a-zA-Z0-9\-]+)?$`); err != nil {
		return "", client.ObjectKey{}, err
	}
	return fleet, client.ObjectKey{Namespace: namespace, Name: computes.ObjectName(fleet, in.ComputeName)}, nil
}

func (s *Server) toCompute(c *gamev1.Compute) Compute {
	out := Compute{FleetId: c.Spec.FleetID, FleetArn: s.ARNs.FleetArn(c.Spec.FleetID), ComputeName: c.Spec.ComputeName,
		ComputeArn: s.ARNs.ComputeArn(c.Spec.FleetID, c.Spec.ComputeName), IpAddress: c.Spec.IPAddress, DnsName: c.Spec.DNSName,
		ComputeStatus: string(c.Status.ComputeStatus), Location: c.Spec.Location, GameLiftServiceSdkEndpoint: s.SDKEndpoint}
	if out.ComputeStatus == "" {
		out.ComputeStatus = string(gamev1.ComputeActive)
	}
	if !c.CreationTimestamp.IsZero() {
		out.CreationTime = &Timestamp{c.CreationTimestamp.Time}
	}
	return out
}

// registerCompute creates the Compute. Registering a compute again with the same registration answers the
// existing one; with another, ConflictException.
func (s *Server) registerCompute(ctx context.Context, namespace string, in *computeInput) (any, *Error) {
	fleet, key, aerr := computeKey(namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	if in.IpAddress == "" && in.DnsName == "" {
		return nil, invalid("RegisterCompute needs an IpAddress or a DnsName: where players reach the compute's processes")
	}
	for field, v := range map[string]string{"ipAddress": in.IpAddress, "dnsName": in.DnsName, "location": in.Location} {
		if err := checkLen(field, v, 0, 128); err != nil {
			return nil, err
		}
	}
	if err := checkLen("certificatePath", in.CertificatePath, 0, 1024); err != nil {
		return nil, err
	}
	c := &gamev1.Compute{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
		Spec: gamev1.ComputeSpec{FleetID: fleet, ComputeName: in.ComputeName, IPAddress: in.IpAddress, DNSName: in.DnsName,
			Location: in.Location, CertificatePath: in.CertificatePath}}
	want := c.Spec
	if err := s.Client.Create(ctx, c); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, kubeError(err, "Compute "+in.ComputeName)
		}
		if err := s.Client.Get(ctx, key, c); err != nil {
			return nil, kubeError(err, "Compute "+in.ComputeName)
		}
		if c.Spec != want {
			return nil, errorf(ConflictException, "Compute "+in.ComputeName+" of fleet "+fleet+" is registered with other settings: deregister it first")
		}
	}
	if c.Status.ComputeStatus == "" {
		before := c.DeepCopy()
		c.Status.ComputeStatus, c.Status.ComputeArn = gamev1.ComputeActive, s.ARNs.ComputeArn(fleet, in.ComputeName)
		if err := s.Client.Status().Patch(ctx, c, client.MergeFrom(before)); err != nil {
			return nil, kubeError(err, "Compute "+in.ComputeName)
		}
	}
	return computeOutput{Compute: s.toCompute(c)}, nil
}

func (s *Server) describeCompute(ctx context.Context, namespace string, in *computeInput) (any, *Error) {
	c, aerr := s.compute(ctx, namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	return computeOutput{Compute: s.toCompute(c)}, nil
}

// compute reads a registered compute (live: a compute just registered, maybe on another replica).
func (s *Server) compute(ctx context.Context, namespace string, in *computeInput) (*gamev1.Compute, *Error) {
	_, key, aerr := computeKey(namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	c := &gamev1.Compute{}
	if err := s.apiReader().Get(ctx, key, c); err != nil {
		return nil, kubeError(err, "Compute "+in.ComputeName+" of fleet "+in.FleetId)
	}
	return c, nil
}

func (s *Server) deregisterCompute(ctx context.Context, namespace string, in *computeInput) (any, *Error) {
	c, aerr := s.compute(ctx, namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	if err := s.Client.Delete(ctx, c, client.Preconditions{UID: &c.UID}); err != nil && !apierrors.IsNotFound(err) {
		return nil, kubeError(err, "Compute "+in.ComputeName)
	}
	return struct{}{}, nil
}

type listComputeInput struct {
	FleetId       string `json:"FleetId"`
	Location      string `json:"Location"`
	ComputeStatus string `json:"ComputeStatus"`
	Limit         *int32 `json:"Limit"`
	NextToken     string `json:"NextToken"`
}

type listComputeOutput struct {
	ComputeList []Compute `json:"ComputeList"`
	NextToken   string    `json:"NextToken,omitempty"`
}

// listCompute pages the fleet's computes in name order (a page of at most Limit, MaxPageSize at most).
func (s *Server) listCompute(ctx context.Context, namespace string, in *listComputeInput) (any, *Error) {
	fleet, aerr := fleetID(in.FleetId)
	if aerr != nil {
		return nil, aerr
	}
	limit, aerr := checkLimit(in.Limit)
	if aerr != nil {
		return nil, aerr
	}
	opts := []client.ListOption{client.InNamespace(namespace), client.MatchingFields{"spec.fleetId": fleet}, client.Limit(int64(pageLimit(limit)))}
	if in.NextToken != "" {
		cont, err := s.Tokens.Verify("ListCompute/"+namespace+"/"+fleet, in.NextToken)
		if err != nil {
			return nil, invalid("Invalid NextToken")
		}
		opts = append(opts, client.Continue(cont))
	}
	var list gamev1.ComputeList
	if err := s.apiReader().List(ctx, &list, opts...); err != nil {
		return nil, kubeError(err, "Computes of fleet "+fleet)
	}
	out := listComputeOutput{ComputeList: []Compute{}}
	for i := range list.Items {
		c := &list.Items[i]
		if (in.Location == "" || c.Spec.Location == in.Location) && (in.ComputeStatus == "" || in.ComputeStatus == string(gamev1.ComputeActive)) {
			out.ComputeList = append(out.ComputeList, s.toCompute(c))
		}
	}
	if list.Continue != "" {
		out.NextToken = s.Tokens.Sign("ListCompute/"+namespace+"/"+fleet, list.Continue)
	}
	return out, nil
}

func (s *Server) apiReader() client.Reader {
	if s.APIReader != nil {
		return s.APIReader
	}
	return s.Reader
}

// pageLimit is the page size of a limit (0: none given).
func pageLimit(limit int) int {
	if limit <= 0 || limit > maxComputePage {
		return maxComputePage
	}
	return limit
}

const maxComputePage = 100

type getComputeAuthTokenOutput struct {
	FleetId             string     `json:"FleetId"`
	FleetArn            string     `json:"FleetArn"`
	ComputeName         string     `json:"ComputeName"`
	ComputeArn          string     `json:"ComputeArn"`
	AuthToken           string     `json:"AuthToken"`
	ExpirationTimestamp *Timestamp `json:"ExpirationTimestamp"`
}

// getComputeAuthToken issues a token for the compute: random, valid for ComputeTokenTTL, kept only as its
// hash in the Compute's status (at most computes.MaxTokens unexpired ones). The request is recorded there
// too, in the same write under the optimistic lock: replayed to any replica, it gets no token.
func (s *Server) getComputeAuthToken(ctx context.Context, who caller, in *computeInput) (any, *Error) {
	c, aerr := s.compute(ctx, who.namespace, in)
	if aerr != nil {
		return nil, aerr
	}
	served, aerr := s.recordServed(c.Status.ServedTokenRequests, who, 32, "Too many auth tokens requested for compute "+in.ComputeName+" within 5 minutes; retry later")
	if aerr != nil {
		return nil, aerr
	}
	ttl := s.ComputeTokenTTL
	if ttl == 0 {
		ttl = computes.DefaultTokenTTL
	}
	now := s.Clock.Now()
	token, expires := computes.NewToken(), now.Add(ttl)
	before := c.DeepCopy()
	c.Status.AuthTokens = computes.WithToken(c.Status.AuthTokens, token, now, expires)
	c.Status.ServedTokenRequests = served
	if err := s.Client.Status().Patch(ctx, c, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return nil, kubeError(err, "Compute "+in.ComputeName)
	}
	return getComputeAuthTokenOutput{FleetId: c.Spec.FleetID, FleetArn: s.ARNs.FleetArn(c.Spec.FleetID), ComputeName: c.Spec.ComputeName,
		ComputeArn: s.ARNs.ComputeArn(c.Spec.FleetID, c.Spec.ComputeName), AuthToken: token, ExpirationTimestamp: &Timestamp{expires.Truncate(time.Millisecond)}}, nil
}
