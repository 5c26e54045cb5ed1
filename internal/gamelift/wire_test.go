package gamelift

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fxamacker/cbor/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/playersessions/operator/internal/metrics"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 30, 219_000_000, time.UTC)

func TestTimestampEncodings(t *testing.T) {
	ts := Timestamp{t0}
	j, err := ts.MarshalJSON()
	if err != nil || string(j) != "1795608030.219" {
		t.Errorf("JSON: %s %v", j, err)
	}
	c, err := ts.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var tag cbor.Tag
	if err := cbor.Unmarshal(c, &tag); err != nil || tag.Number != 1 || tag.Content != 1795608030.219 {
		t.Errorf("CBOR: tag %d %v (%v)", tag.Number, tag.Content, err)
	}
}

func TestErrorBodies(t *testing.T) {
	e := errorf(NotFoundException, "gone")
	j, _ := jsonCodec{}.errorBody(e)
	if !strings.Contains(string(j), `"__type":"NotFoundException"`) || !strings.Contains(string(j), `"message":"gone"`) {
		t.Errorf("JSON error body %s", j)
	}
	c, _ := cborCodec{}.errorBody(e)
	var m map[string]string
	if err := cbor.Unmarshal(c, &m); err != nil || m["__type"] != "com.amazonaws.gamelift#NotFoundException" || m["Message"] != "gone" {
		t.Errorf("CBOR error body %v %v", m, err)
	}
}

func TestAuthenticate(t *testing.T) {
	s := fakeServer(t) // the key AKID / s3cret in namespace tenant, the clock at t0
	body := []byte(`{"PlayerId":"p"}`)
	signed := func(keyID, secret, service string, at time.Time) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", "GameLift.DescribePlayerSessions")
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, r, hex.EncodeToString(sum[:]), service, "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		name string
		req  func() *http.Request
		want string // "" = authenticated as namespace "tenant"
	}{
		{"valid", func() *http.Request { return signed("AKID", "s3cret", "gamelift", t0) }, ""},
		{"clock skew within 5 minutes", func() *http.Request { return signed("AKID", "s3cret", "gamelift", t0.Add(-4*time.Minute)) }, ""},
		{"stale", func() *http.Request { return signed("AKID", "s3cret", "gamelift", t0.Add(-6*time.Minute)) }, "Signature expired"},
		{"future", func() *http.Request { return signed("AKID", "s3cret", "gamelift", t0.Add(6*time.Minute)) }, "Signature expired"},
		{"wrong secret", func() *http.Request { return signed("AKID", "guess", "gamelift", t0) }, "does not match"},
		{"unknown key", func() *http.Request { return signed("AKIDX", "s3cret", "gamelift", t0) }, "unknown access key"},
		{"other service", func() *http.Request { return signed("AKID", "s3cret", "s3", t0) }, "scoped to the service"},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
			return r
		}, "Missing or unsupported authentication"},
		{"body changed after signing", func() *http.Request {
			r := signed("AKID", "s3cret", "gamelift", t0)
			r.Header.Set("X-Test-Body", `{"PlayerId":"q"}`)
			return r
		}, "does not match"},
		{"signed header changed", func() *http.Request {
			r := signed("AKID", "s3cret", "gamelift", t0)
			r.Header.Set("X-Amz-Target", "GameLift.CreatePlayerSession")
			return r
		}, "does not match"},
		{"unsigned header added", func() *http.Request {
			r := signed("AKID", "s3cret", "gamelift", t0)
			r.Header.Set("X-Forwarded-For", "10.0.0.1")
			return r
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			got := body
			if b := r.Header.Get("X-Test-Body"); b != "" {
				got = []byte(b) // what arrived differs from what was signed
			}
			who, err := s.authenticate(context.Background(), r, got)
			ns := who.namespace
			switch {
			case tt.want == "" && (err != nil || ns != "tenant"):
				t.Fatalf("got %q %v, want tenant", ns, err)
			case tt.want != "" && (err == nil || err.Type != UnauthorizedException || !strings.Contains(err.Message, tt.want)):
				t.Fatalf("got %v, want UnauthorizedException %q", err, tt.want)
			}
		})
	}
}

// TestSignedHeadersRequired: the host, the date, the content type and X-Amz-Target (which names the
// action) must be signed. Before, a request signed without X-Amz-Target could have it added afterwards:
// a captured AcceptPlayerSession was served as RemovePlayerSession.
func TestSignedHeadersRequired(t *testing.T) {
	s := fakeServer(t)
	body := []byte(`{"PlayerSessionId":"psess-x"}`)
	signWithout := func(unsigned ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
		headers := map[string]string{"X-Amz-Target": jsonTarget + "AcceptPlayerSession", "Content-Type": "application/x-amz-json-1.1"}
		for h, v := range headers {
			if !slices.Contains(unsigned, h) {
				r.Header.Set(h, v)
			}
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s3cret"}, r,
			hex.EncodeToString(sum[:]), signingService, "us-east-1", t0); err != nil {
			t.Fatal(err)
		}
		for _, h := range unsigned { // added after signing, as an attacker would
			r.Header.Set(h, strings.Replace(headers[h], "AcceptPlayerSession", "RemovePlayerSession", 1))
		}
		return r
	}
	for _, tc := range []struct {
		name     string
		unsigned []string
		want     string
	}{
		{"all signed", nil, ""},
		{"X-Amz-Target added after signing", []string{"X-Amz-Target"}, "must sign the header x-amz-target"},
		{"Content-Type added after signing", []string{"Content-Type"}, "must sign the header content-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, signWithout(tc.unsigned...))
			switch {
			case tc.want == "" && strings.Contains(w.Body.String(), UnauthorizedException):
				t.Fatalf("refused: %s", w.Body)
			case tc.want != "" && (w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), tc.want)):
				t.Fatalf("got %d %s, want UnauthorizedException %q", w.Code, w.Body, tc.want)
			}
		})
	}
}

// TestReplayRefused: a signed call that changes state is served once; the same request sent again within
// the signature's 5 minutes is refused. A read may be sent again.
func TestReplayRefused(t *testing.T) {
	s := fakeServer(t)
	for _, tc := range []struct {
		action, body string
		replayable   bool
	}{
		{"CreateGameSession", `{"FleetId":"fleet-1","MaximumPlayerSessionCount":2}`, false},
		{"AcceptPlayerSession", `{"PlayerSessionId":"psess-x"}`, false},
		{"DescribePlayerSessions", `{"PlayerId":"alice"}`, true},
	} {
		for _, cbor := range []bool{false, true} {
			body := []byte(tc.body)
			if cbor {
				body = cborOf(t, tc.body)
			}
			first, again := httptest.NewRecorder(), httptest.NewRecorder()
			s.ServeHTTP(first, signedCall(t, cbor, tc.action, body))
			s.ServeHTTP(again, signedCall(t, cbor, tc.action, body))
			if strings.Contains(first.Body.String(), "already served") {
				t.Fatalf("%s (cbor %v): the first call was refused as a replay", tc.action, cbor)
			}
			if replayed := strings.Contains(again.Body.String(), "already served"); replayed == tc.replayable {
				t.Errorf("%s (cbor %v): sent again, refused as a replay = %v, want %v: %s", tc.action, cbor, replayed, !tc.replayable, again.Body)
			}
		}
	}
}

// cborOf is the JSON object js encoded as CBOR.
func cborOf(t *testing.T, js string) []byte {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRatePerKey: one access key's calls beyond its rate (and burst) are answered ThrottlingException,
// which the SDKs retry; another key is not slowed by it, and the key's rate refills with time. Before,
// one tenant could take all of the endpoint's capacity.
func TestRatePerKey(t *testing.T) {
	s := fakeServer(t)
	s.RatePerKey, s.BurstPerKey = 10, 20
	clk := s.Clock.(*clocktesting.FakeClock)
	other := NewAccessKey("keys", "key-b", "tenant-b", "AKIDB", "s3cretb")
	if err := s.Client.Create(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"PlayerId":"alice"}`)
	call := func(keyID, secret string) string {
		r := httptest.NewRequest(http.MethodPost, "http://gamelift.local/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", jsonTarget+"DescribePlayerSessions")
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, r,
			hex.EncodeToString(sum[:]), signingService, "us-east-1", clk.Now()); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Header().Get("X-Amzn-ErrorType")
	}
	throttled := func(keyID, secret string, n int) int {
		count := 0
		for range n {
			if call(keyID, secret) == ThrottlingException {
				count++
			}
		}
		return count
	}
	if got := throttled("AKID", "s3cret", 30); got != 10 {
		t.Fatalf("30 calls at once with a burst of 20: %d throttled, want 10", got)
	}
	if got := throttled("AKIDB", "s3cretb", 20); got != 0 {
		t.Fatalf("another key: %d of its 20 calls throttled, want none", got)
	}
	clk.Step(time.Second) // 10 more tokens
	if got := throttled("AKID", "s3cret", 12); got != 2 {
		t.Fatalf("a second later, 12 calls: %d throttled, want 2", got)
	}
}

// TestCallMetrics: every call is counted by action and by the code answered (ok, or the error type), an
// action the endpoint does not serve as "unknown", so that the label's values stay bounded.
func TestCallMetrics(t *testing.T) {
	s := fakeServer(t)
	count := func(action, code string) float64 {
		return testutil.ToFloat64(metrics.GameLiftRequests.WithLabelValues(action, code))
	}
	okBefore := count("DescribePlayerSessions", "ok")
	unknownBefore := count("unknown", UnknownOperationException)
	unauthorizedBefore := count("DescribePlayerSessions", UnauthorizedException)

	s.ServeHTTP(httptest.NewRecorder(), signedCall(t, false, "DescribePlayerSessions", []byte(`{"PlayerId":"alice"}`)))
	s.ServeHTTP(httptest.NewRecorder(), signedCall(t, false, "NoSuchAction"+strings.Repeat("x", 5), []byte(`{}`)))
	unsigned := httptest.NewRequest(http.MethodPost, "http://gamelift.local/", strings.NewReader(`{"PlayerId":"alice"}`))
	unsigned.Header.Set("X-Amz-Target", jsonTarget+"DescribePlayerSessions")
	s.ServeHTTP(httptest.NewRecorder(), unsigned)

	for _, c := range []struct {
		action, code string
		before       float64
	}{
		{"DescribePlayerSessions", "ok", okBefore},
		{"unknown", UnknownOperationException, unknownBefore},
		{"DescribePlayerSessions", UnauthorizedException, unauthorizedBefore},
	} {
		if got := count(c.action, c.code) - c.before; got != 1 {
			t.Errorf("%s %s counted %v times, want 1", c.action, c.code, got)
		}
	}
	if n := testutil.CollectAndCount(metrics.GameLiftDuration); n == 0 {
		t.Error("no latency observed")
	}
}
