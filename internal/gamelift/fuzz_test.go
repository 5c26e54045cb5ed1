package gamelift

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	"github.com/aws/aws-sdk-go-v2/service/gamelift/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/internal/ids"
	"github.com/playersessions/operator/internal/index"
	"github.com/playersessions/operator/internal/indexes"
)

// The fuzz tests run their seed corpus in make test; a longer run is recorded in docs/benchmarks.md:
//
//	go test ./internal/gamelift -run '^$' -fuzz FuzzCall -fuzztime 4m

var fuzzActions = []string{"DescribePlayerSessions", "CreatePlayerSession", "CreatePlayerSessions", "AcceptPlayerSession",
	"RemovePlayerSession", "CreateGameSession", "DescribeGameSessions", "UpdateGameSession",
	"RegisterCompute", "DescribeCompute", "ListCompute", "DeregisterCompute", "GetComputeAuthToken", "TerminateGameSession"}

var gameLiftErrors = map[string]bool{InvalidRequestException: true, NotFoundException: true, GameSessionFullException: true,
	InvalidGameSessionStatusException: true, UnauthorizedException: true, InternalServiceException: true,
	UnknownOperationException: true, SerializationException: true, ThrottlingException: true, ConflictException: true, FleetCapacityExceededException: true}

// fakeServer is the endpoint on a fake API server holding one access key (AKID / s3cret acting in
// "tenant"), and keys that must never authenticate: one without a tenant, one outside the key namespace
// (AKIDNOTENANT, AKIDPLANTED, secret s3cret). "tenant" holds the game session "claimed", which another game
// server claimed, with the RESERVED player session psess-claimed.
func fakeServer(t testing.TB, with ...func(*fake.ClientBuilder)) *Server {
	t.Helper()
	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = gamev1.AddToScheme(scheme)
	noTenant := NewAccessKey("keys", "no-tenant", "", "AKIDNOTENANT", "s3cret")
	delete(noTenant.Labels, TenantLabel)
	claimed := &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "claimed"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-a", MaximumPlayerSessionCount: 4}}
	claimed.Status.Status, claimed.Status.GameSessionID, claimed.Status.GameServer = gamev1.GameSessionActive, "arn:aws:gamelift:local::gamesession/fleet-a/gsess-claimed", "system:serviceaccount:tenant:other-server"
	player := &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant", Name: "claimed-p1"},
		Spec:   gamev1.PlayerSessionSpec{GameSessionName: "claimed", PlayerID: "p1"},
		Status: gamev1.PlayerSessionStatus{Status: gamev1.PlayerSessionReserved, PlayerSessionID: "psess-claimed", GameSessionID: claimed.Status.GameSessionID}}
	b := fake.NewClientBuilder().WithScheme(scheme).WithStatusSubresource(&gamev1.GameSession{}, &gamev1.PlayerSession{}, &gamev1.Compute{}).
		WithObjects(NewAccessKey("keys", "key", "tenant", "AKID", "s3cret"), noTenant, NewAccessKey("tenant", "planted", "tenant", "AKIDPLANTED", "s3cret"), claimed, player).
		WithIndex(&corev1.Secret{}, IndexAccessKeyID, AccessKeyIDOf)
	for _, f := range with {
		f(b)
	}
	if err := indexes.Setup(context.Background(), fakeIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	clk := clocktesting.NewFakeClock(t0)
	s := &Server{Client: c, Reader: c, KeyNamespace: "keys", Clock: clk, Index: index.NewIndex(clk, time.Minute), Tokens: index.NewTokens([]byte("k")),
		ARNs: ids.ARNs{Region: "local", AccountID: "000000000000"}, DecisionTimeout: time.Millisecond}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(player), player); err != nil { // as stored
		t.Fatal(err)
	}
	s.Index.Upsert(player)
	return s
}

type fakeIndexer struct{ b *fake.ClientBuilder }

func (i fakeIndexer) IndexField(_ context.Context, obj client.Object, field string, f client.IndexerFunc) error {
	i.b.WithIndex(obj, field, f)
	return nil
}

// signedCall is a request for action with body, in CBOR or AWS JSON 1.1, signed with the test key.
func signedCall(t testing.TB, useCBOR bool, action string, body []byte) *http.Request {
	t.Helper()
	return signedCallWith(t, useCBOR, action, body, nil)
}

// signedCallWith is signedCall with extra headers, signed too.
func signedCallWith(t testing.TB, useCBOR bool, action string, body []byte, extra http.Header) *http.Request {
	t.Helper()
	var r *http.Request
	if useCBOR {
		r = httptest.NewRequest(http.MethodPost, "http://gamelift.local"+cborPathPrefix+action, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/cbor")
		r.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
	} else {
		r = httptest.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", jsonTarget+action)
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	}
	for h, v := range extra {
		r.Header[h] = v
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s3cret"}, r,
		hex.EncodeToString(sum[:]), signingService, "us-east-1", t0); err != nil {
		t.Fatal(err)
	}
	return r
}

// sdkRequests records what aws-sdk-go-v2 (a client nobody here wrote) sends for each action: CBOR bodies and
// signed headers, from a loopback server that answers nothing useful.
func sdkRequests(t testing.TB) []*http.Request {
	t.Helper()
	var mu sync.Mutex
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		got = append(got, r.Clone(context.Background()))
		got[len(got)-1].Body = io.NopCloser(bytes.NewReader(body))
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
	}))
	defer srv.Close()
	c := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "s3cret", "")})
	ctx := context.Background()
	gsid := aws.String("arn:aws:gamelift:local::gamesession/fleet-a/gsess-1")
	_, _ = c.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{GameSessionId: gsid, PlayerSessionStatusFilter: aws.String("ACTIVE"), Limit: aws.Int32(10), NextToken: aws.String("tok")})
	_, _ = c.CreatePlayerSession(ctx, &gamelift.CreatePlayerSessionInput{GameSessionId: gsid, PlayerId: aws.String("alice"), PlayerData: aws.String(`{"team":"red"}`)})
	_, _ = c.CreatePlayerSessions(ctx, &gamelift.CreatePlayerSessionsInput{GameSessionId: gsid, PlayerIds: []string{"a", "b"}, PlayerDataMap: map[string]string{"a": "x"}})
	_, _ = c.CreateGameSession(ctx, &gamelift.CreateGameSessionInput{FleetId: aws.String("fleet-a"), MaximumPlayerSessionCount: aws.Int32(4), Name: aws.String("m"),
		GameProperties: []types.GameProperty{{Key: aws.String("map"), Value: aws.String("dust")}}})
	_, _ = c.DescribeGameSessions(ctx, &gamelift.DescribeGameSessionsInput{FleetId: aws.String("fleet-a"), StatusFilter: aws.String("ACTIVE"), Limit: aws.Int32(2)})
	_, _ = c.UpdateGameSession(ctx, &gamelift.UpdateGameSessionInput{GameSessionId: gsid, MaximumPlayerSessionCount: aws.Int32(8), PlayerSessionCreationPolicy: types.PlayerSessionCreationPolicyDenyAll})
	if len(got) < 6 {
		t.Fatalf("recorded %d SDK requests", len(got))
	}
	return got
}

func FuzzCall(f *testing.F) {
	for _, r := range sdkRequests(f) {
		body, _ := io.ReadAll(r.Body)
		action := strings.TrimPrefix(r.URL.Path, cborPathPrefix)
		for i, a := range fuzzActions {
			if a == action {
				f.Add(true, uint8(i), body)
				f.Add(false, uint8(i), []byte(`{"GameSessionId":"arn:aws:gamelift:local::gamesession/fleet-a/gsess-1","PlayerId":"alice","FleetId":"fleet-a","MaximumPlayerSessionCount":4}`))
			}
		}
	}
	f.Add(false, uint8(0), []byte(`{"PlayerSessionId":"psess-1","Limit":-1}`))
	f.Add(true, uint8(3), []byte{0xa1, 0x6f})
	f.Add(false, uint8(3), []byte(`{"PlayerSessionId":"psess-claimed"}`)) // another game server's game
	f.Add(false, uint8(4), []byte(`{"PlayerSessionId":"psess-claimed"}`))
	s := fakeServer(f)
	s.RatePerKey = 1e9 // the target is the handlers, not the per-key throttle (TestRatePerKey)
	var calls atomic.Int64
	f.Fuzz(func(t *testing.T, useCBOR bool, action uint8, body []byte) {
		name := fuzzActions[int(action)%len(fuzzActions)]
		w := httptest.NewRecorder()
		// Each call is a new invocation, as the SDKs' amz-sdk-invocation-id says: an input the engine runs
		// again is not a replay of a captured request (TestReplayRefused covers those).
		invocation := http.Header{"Amz-Sdk-Invocation-Id": {strconv.FormatInt(calls.Add(1), 10)}}
		s.ServeHTTP(w, signedCallWith(t, useCBOR, name, body, invocation))
		if w.Code == http.StatusOK {
			if name == "AcceptPlayerSession" || name == "RemovePlayerSession" {
				// A game-server call served is one on a game its key claimed.
				var out playerSessionOutput
				if useCBOR {
					_ = cborCodec{}.decode(w.Body.Bytes(), &out)
				} else {
					_ = jsonCodec{}.decode(w.Body.Bytes(), &out)
				}
				gs, aerr := s.gameSessionByID(context.Background(), "tenant", out.PlayerSession.GameSessionId)
				if aerr != nil || gs.Status.GameServer != ClaimPrefix+"AKID" {
					t.Fatalf("%s served on a game its key did not claim (%v): %s", name, aerr, w.Body.Bytes())
				}
			}
			return
		}
		var c codec = jsonCodec{}
		if useCBOR {
			c = cborCodec{}
		}
		var e map[string]string
		if err := c.decode(w.Body.Bytes(), &e); err != nil {
			t.Fatalf("%s: status %d with an undecodable error body %q: %v", name, w.Code, w.Body.Bytes(), err)
		}
		typ := strings.TrimPrefix(e["__type"], "com.amazonaws.gamelift#")
		if !gameLiftErrors[typ] || e["message"] == "" {
			t.Fatalf("%s: status %d, not a GameLift error naming the problem: %v", name, w.Code, e)
		}
		if (w.Code == http.StatusInternalServerError) != (typ == InternalServiceException) || (w.Code != 400 && w.Code != 500) {
			t.Fatalf("%s: status %d for %s", name, w.Code, typ)
		}
		if typ == UnauthorizedException {
			t.Fatalf("%s: a correctly signed request was refused: %v", name, e)
		}
	})
}

// FuzzAuthenticate: whatever the Authorization and X-Amz-Date headers say, authenticate never panics, and
// accepts nothing it cannot verify: every failure is an UnauthorizedException.
func FuzzAuthenticate(f *testing.F) {
	for _, r := range sdkRequests(f) {
		body, _ := io.ReadAll(r.Body)
		f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), r.Header.Get("Content-Type"), r.Header.Get("X-Amz-Target"), body)
	}
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/gamelift/aws4_request, SignedHeaders=host, Signature=00", "20261125T120030Z", "", "", []byte("{}"))
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/gamelift/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", "20261125T120030Z",
		"application/x-amz-json-1.1", "GameLift.RemovePlayerSession", []byte("{}"))
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;;, Signature==", "x", "", "", []byte{})
	for _, keyID := range []string{"AKIDNOTENANT", "AKIDPLANTED"} { // genuine signatures of keys that are no keys
		body := []byte(`{"PlayerId":"alice"}`)
		r := httptest.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", jsonTarget+"DescribePlayerSessions")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: "s3cret"}, r,
			hex.EncodeToString(sum[:]), signingService, "us-east-1", t0); err != nil {
			f.Fatal(err)
		}
		f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), r.Header.Get("Content-Type"), r.Header.Get("X-Amz-Target"), body)
	}
	s := fakeServer(f)
	f.Fuzz(func(t *testing.T, auth, date, contentType, target string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
		r.Header.Set("Authorization", auth)
		r.Header.Set("X-Amz-Date", date)
		if contentType != "" { // the headers that must be signed when present (the target names the action)
			r.Header.Set("Content-Type", contentType)
		}
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
		}
		who, err := s.authenticate(context.Background(), r, body)
		ns := who.namespace
		switch {
		case err == nil && ns != "tenant":
			t.Fatalf("authenticated into %q", ns)
		case err == nil:
			// Only a genuine signature over exactly this request can get here; the SDK's own were made
			// for other requests (other host and headers), so this is a forgery.
			t.Fatalf("accepted %q at %q", auth, date)
		case err.Type != UnauthorizedException || err.Message == "":
			t.Fatalf("failure %v is not an UnauthorizedException naming the problem", err)
		}
	})
}
