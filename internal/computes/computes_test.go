package computes

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
)

func TestObjectName(t *testing.T) {
	seen := map[string]string{}
	for _, tc := range []struct{ fleet, compute string }{
		{"fleet-a", "compute-1"}, {"fleet-b", "compute-1"}, {"fleet-a", "Compute-1"}, {"fleet-a", "team-a/pod-7"},
		{"fleet-a", "-edge-"}, {"fleet-a", "---"}, {"fleet-a", strings.Repeat("x", 128)}, {"fleet-a", "A/B"},
	} {
		name := ObjectName(tc.fleet, tc.compute)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > 49 {
			t.Errorf("%s/%s: %q is no object name: %v", tc.fleet, tc.compute, name, errs)
		}
		if name != ObjectName(tc.fleet, tc.compute) {
			t.Errorf("%s/%s: not deterministic", tc.fleet, tc.compute)
		}
		if prev, ok := seen[name]; ok {
			t.Errorf("%s/%s and %s share %q", tc.fleet, tc.compute, prev, name)
		}
		seen[name] = tc.fleet + "/" + tc.compute
	}
}

func TestTokens(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	pattern := regexp.MustCompile(`^[a-zA-Z0-9\-]{1,64}$`)
	a, b := NewToken(), NewToken()
	if !pattern.MatchString(a) || a == b {
		t.Fatalf("tokens %q and %q", a, b)
	}
	c := &gamev1.Compute{}
	c.Status.AuthTokens = WithToken(nil, a, t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		token string
		at    time.Time
		want  bool
	}{
		{a, t0, true}, {a, t0.Add(time.Hour - time.Second), true}, {a, t0.Add(time.Hour), false}, {b, t0, false}, {"", t0, false},
	} {
		if got := Valid(c, tc.token, tc.at); got != tc.want {
			t.Errorf("Valid(%q, %s) = %v, want %v", tc.token[:min(len(tc.token), 4)], tc.at.Sub(t0), got, tc.want)
		}
	}
	for _, s := range c.Status.AuthTokens {
		if strings.Contains(s.SHA256, a) {
			t.Error("the token itself is kept")
		}
	}
	// The expired are dropped; at most MaxTokens are kept, the newest.
	tokens := c.Status.AuthTokens
	var last string
	for i := range MaxTokens + 2 {
		last = NewToken()
		tokens = WithToken(tokens, last, t0.Add(2*time.Hour), t0.Add(time.Duration(3+i)*time.Hour))
	}
	c.Status.AuthTokens = tokens
	if len(tokens) != MaxTokens || !Valid(c, last, t0.Add(2*time.Hour)) || Valid(c, a, t0) {
		t.Errorf("%d tokens kept (the newest valid: %v)", len(tokens), Valid(c, last, t0.Add(2*time.Hour)))
	}
}
