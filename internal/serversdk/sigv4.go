package serversdk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The SigV4 form of the connect query (the SDK's server/internal/security/sigv4_utility.go): Authorization
// is "SigV4" and these carry the signature.
const (
	SigV4Authorization = "SigV4"
	queryAlgorithm     = "X-Amz-Algorithm"
	queryCredential    = "X-Amz-Credential"
	queryDate          = "X-Amz-Date"
	querySignature     = "X-Amz-Signature"
	sigV4Algorithm     = "AWS4-HMAC-SHA256"
	sigV4DateTime      = "20060102T150405Z"
	maxSigV4Skew       = 5 * time.Minute
)

// VerifySigV4 checks the SigV4 signature of a connect query as the SDK makes it: not standard SigV4, but an
// HMAC chain over the sorted, query-escaped ComputeId, FleetId and pID only, scoped to the service
// "gamelift". secretOf finds an access key's secret. It returns the access key id that signed.
func VerifySigV4(r ConnectRequest, now time.Time, secretOf func(keyID string) (string, bool)) (string, error) {
	q := url.Values(r.Query)
	if q.Get(queryAlgorithm) != sigV4Algorithm {
		return "", fmt.Errorf("the connect query's %s must be %s", queryAlgorithm, sigV4Algorithm)
	}
	scope := strings.Split(q.Get(queryCredential), "/")
	if len(scope) != 5 || scope[3] != "gamelift" || scope[4] != "aws4_request" {
		return "", fmt.Errorf("malformed %s", queryCredential)
	}
	signedAt, err := time.Parse(sigV4DateTime, q.Get(queryDate))
	if err != nil || signedAt.Format("20060102") != scope[1] {
		return "", fmt.Errorf("missing or malformed %s, or not the credential's date", queryDate)
	}
	if d := now.Sub(signedAt); d > maxSigV4Skew || d < -maxSigV4Skew {
		return "", fmt.Errorf("the signature was made at %s, more than 5 minutes from the server's time", signedAt.Format(time.RFC3339))
	}
	keyID := scope[0]
	secret, ok := secretOf(keyID)
	if !ok {
		return "", fmt.Errorf("unknown access key %s", keyID)
	}
	params := map[string]string{QueryComputeID: r.ComputeID, QueryFleetID: r.FleetID, QueryProcessID: r.ProcessID}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(params[k]))
	}
	canonical := sha256.Sum256([]byte(strings.Join(pairs, "&")))
	credScope := strings.Join(scope[1:], "/")
	toSign := sigV4Algorithm + "\n" + q.Get(queryDate) + "\n" + credScope + "\n" + hex.EncodeToString(canonical[:])
	key := []byte("AWS4" + secret)
	for _, part := range []string{scope[1], scope[2], scope[3], scope[4]} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(q.Get(querySignature))) {
		return "", fmt.Errorf("the connect query's signature does not match")
	}
	return keyID, nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
