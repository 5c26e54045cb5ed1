package serversdk_test

import (
	"strings"
	"testing"
	"time"

	"github.com/playersessions/operator/internal/serversdk"
)

// TestVerifySigV4Refusals: what the SigV4 form of the connect query must carry, each refusal naming the
// problem (a genuine signature from the SDK is accepted: TestRealSDKSigV4).
func TestVerifySigV4Refusals(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	query := func(kv ...string) serversdk.ConnectRequest {
		q := map[string][]string{"X-Amz-Algorithm": {"AWS4-HMAC-SHA256"}, "X-Amz-Credential": {"AKIDTEST/20261202/us-east-1/gamelift/aws4_request"},
			"X-Amz-Date": {"20261202T120000Z"}, "X-Amz-Signature": {"00"}}
		for i := 0; i+1 < len(kv); i += 2 {
			q[kv[i]] = []string{kv[i+1]}
		}
		return serversdk.ConnectRequest{ProcessID: "p", ComputeID: "c", FleetID: "f", AuthToken: "SigV4", Query: q}
	}
	secretOf := func(id string) (string, bool) { return "secret", id == "AKIDTEST" }
	for _, tc := range []struct {
		name string
		r    serversdk.ConnectRequest
		want string
	}{
		{"another algorithm", query("X-Amz-Algorithm", "AWS4-HMAC-SHA1"), "must be AWS4-HMAC-SHA256"},
		{"another service", query("X-Amz-Credential", "AKIDTEST/20261202/us-east-1/s3/aws4_request"), "malformed X-Amz-Credential"},
		{"no date", query("X-Amz-Date", ""), "malformed X-Amz-Date"},
		{"not the credential's date", query("X-Amz-Date", "20261201T120000Z"), "not the credential's date"},
		{"too old", query("X-Amz-Date", "20261202T115400Z"), "more than 5 minutes"},
		{"unknown key", query("X-Amz-Credential", "AKIDNOBODY/20261202/us-east-1/gamelift/aws4_request"), "unknown access key AKIDNOBODY"},
		{"a forged signature", query(), "signature does not match"},
	} {
		if _, err := serversdk.VerifySigV4(tc.r, now, secretOf); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
