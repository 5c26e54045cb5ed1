// Package alerts tests the operator's Prometheus alerts (config/prometheus/prometheusrule.yaml) with
// promtool's rule unit tests on synthetic series: each alert fires when its condition has lasted, and not
// before or without it. promtool is built from the Go module proxy by hack/promtool.sh; make test sets
// PROMTOOL.
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// rule is an alerting rule of the PrometheusRule.
type rule struct {
	Alert       string            `json:"alert"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertCase is one promtool test: series, and at eval the alert firing with labels (their annotations
// rendered from the rule's, with value for {{ $value }}), or not (fire nil).
type alertCase struct {
	name   string
	alert  string
	series map[string]string // series -> promtool values notation
	eval   string
	fire   []map[string]string
	value  string
}

const job = `job="playersessions"`

func cases() []alertCase {
	s := func(metric, labels string) string {
		if labels == "" {
			return metric + "{" + job + "}"
		}
		return metric + "{" + job + ", " + labels + "}"
	}
	leader := `name="playersessions-manager.game.playersessions.dev"`
	bucket := func(metric, labels, le string) string {
		return s(metric+"_bucket", strings.TrimPrefix(labels+`, le="`+le+`"`, ", "))
	}
	return []alertCase{
		{name: "no replica up", alert: "PlayerSessionsManagerDown", eval: "10m",
			series: map[string]string{s("up", `instance="a"`): "0x15", s("up", `instance="b"`): "0x15"},
			fire:   []map[string]string{{}}},
		{name: "no replica scraped at all", alert: "PlayerSessionsManagerDown", eval: "10m",
			series: map[string]string{`up{job="other"}`: "1x15"},
			fire:   []map[string]string{{}}},
		{name: "one replica up", alert: "PlayerSessionsManagerDown", eval: "10m",
			series: map[string]string{s("up", `instance="a"`): "0x15", s("up", `instance="b"`): "1x15"}},
		{name: "down for less than 5 minutes", alert: "PlayerSessionsManagerDown", eval: "10m",
			series: map[string]string{s("up", `instance="a"`): "1x7 0x8"}},

		{name: "no leader", alert: "PlayerSessionsNoLeader", eval: "5m",
			series: map[string]string{s("leader_election_master_status", `instance="a", `+leader): "0x10", s("leader_election_master_status", `instance="b", `+leader): "0x10"},
			fire:   []map[string]string{{}}},
		{name: "a leader", alert: "PlayerSessionsNoLeader", eval: "5m",
			series: map[string]string{s("leader_election_master_status", `instance="a", `+leader): "0x10", s("leader_election_master_status", `instance="b", `+leader): "1x10"}},
		{name: "a handover", alert: "PlayerSessionsNoLeader", eval: "5m",
			series: map[string]string{s("leader_election_master_status", `instance="a", `+leader): "1 1 1 0 0 0 0 0 0 0", s("leader_election_master_status", `instance="b", `+leader): "0 0 0 0 1 1 1 1 1 1"}},

		{name: "one reconcile in ten fails", alert: "PlayerSessionsReconcileErrors", eval: "30m",
			series: map[string]string{s("controller_runtime_reconcile_total", `controller="gamesession", result="error"`): "0+10x40",
				s("controller_runtime_reconcile_total", `controller="gamesession", result="success"`):   "0+90x40",
				s("controller_runtime_reconcile_errors_total", `controller="gamesession"`):              "0+10x40",
				s("controller_runtime_reconcile_total", `controller="playersession", result="success"`): "0+100x40",
				s("controller_runtime_reconcile_errors_total", `controller="playersession"`):            "0x40"},
			fire: []map[string]string{{"controller": "gamesession"}}},
		{name: "one in a thousand", alert: "PlayerSessionsReconcileErrors", eval: "30m",
			series: map[string]string{s("controller_runtime_reconcile_total", `controller="gamesession", result="success"`): "0+1000x40",
				s("controller_runtime_reconcile_errors_total", `controller="gamesession"`): "0+1x40"}},

		{name: "webhook 500s", alert: "PlayerSessionsWebhookFailures", eval: "20m",
			series: map[string]string{s("controller_runtime_webhook_requests_total", `webhook="/validate", code="500"`): "0+5x30",
				s("controller_runtime_webhook_requests_total", `webhook="/validate", code="200"`): "0+100x30"},
			fire: []map[string]string{{}}},
		{name: "webhook fine", alert: "PlayerSessionsWebhookFailures", eval: "20m",
			series: map[string]string{s("controller_runtime_webhook_requests_total", `webhook="/validate", code="500"`): "3x30",
				s("controller_runtime_webhook_requests_total", `webhook="/validate", code="200"`): "0+100x30"}},

		{name: "timeouts 10 s late", alert: "PlayerSessionsTimeoutsLate", eval: "30m",
			series: map[string]string{bucket("playersessions_timeout_lateness_seconds", "", "0.1"): "0x40", bucket("playersessions_timeout_lateness_seconds", "", "5"): "0x40",
				bucket("playersessions_timeout_lateness_seconds", "", "10"): "0+10x40", bucket("playersessions_timeout_lateness_seconds", "", "+Inf"): "0+10x40"},
			fire: []map[string]string{{}}},
		{name: "timeouts on time", alert: "PlayerSessionsTimeoutsLate", eval: "30m",
			series: map[string]string{bucket("playersessions_timeout_lateness_seconds", "", "0.1"): "0+10x40", bucket("playersessions_timeout_lateness_seconds", "", "5"): "0+10x40",
				bucket("playersessions_timeout_lateness_seconds", "", "10"): "0+10x40", bucket("playersessions_timeout_lateness_seconds", "", "+Inf"): "0+10x40"}},

		{name: "store writes failing", alert: "PlayerSessionsHistoryStoreErrors", eval: "20m",
			series: map[string]string{s("playersessions_history_archive_errors_total", ""): "0+3x30"}, fire: []map[string]string{{}}},
		{name: "one failure long ago", alert: "PlayerSessionsHistoryStoreErrors", eval: "30m",
			series: map[string]string{s("playersessions_history_archive_errors_total", ""): "0 1x40"}},

		{name: "a backlog", alert: "PlayerSessionsHistoryBacklog", eval: "40m", value: "1500",
			series: map[string]string{s("playersessions_history_backlog", `instance="a"`): "1500x50"}, fire: []map[string]string{{}}},
		{name: "a small backlog", alert: "PlayerSessionsHistoryBacklog", eval: "40m",
			series: map[string]string{s("playersessions_history_backlog", `instance="a"`): "20x50"}},

		{name: "2% server errors", alert: "PlayerSessionsGameLiftErrors", eval: "20m",
			series: map[string]string{s("playersessions_gamelift_requests_total", `action="CreatePlayerSession", code="InternalServiceException"`): "0+2x30",
				s("playersessions_gamelift_requests_total", `action="CreatePlayerSession", code="ok"`): "0+98x30"},
			fire: []map[string]string{{}}},
		{name: "client errors are not server errors", alert: "PlayerSessionsGameLiftErrors", eval: "20m",
			series: map[string]string{s("playersessions_gamelift_requests_total", `action="CreatePlayerSession", code="GameSessionFullException"`): "0+50x30",
				s("playersessions_gamelift_requests_total", `action="CreatePlayerSession", code="ok"`): "0+50x30"}},

		{name: "a slow action", alert: "PlayerSessionsGameLiftSlow", eval: "30m",
			series: map[string]string{
				bucket("playersessions_gamelift_request_duration_seconds", `action="CreatePlayerSession"`, "0.1"):     "0x40",
				bucket("playersessions_gamelift_request_duration_seconds", `action="CreatePlayerSession"`, "1"):       "0x40",
				bucket("playersessions_gamelift_request_duration_seconds", `action="CreatePlayerSession"`, "2.5"):     "0+10x40",
				bucket("playersessions_gamelift_request_duration_seconds", `action="CreatePlayerSession"`, "+Inf"):    "0+10x40",
				bucket("playersessions_gamelift_request_duration_seconds", `action="DescribePlayerSessions"`, "0.1"):  "0+10x40",
				bucket("playersessions_gamelift_request_duration_seconds", `action="DescribePlayerSessions"`, "+Inf"): "0+10x40"},
			fire: []map[string]string{{"action": "CreatePlayerSession"}}},
		{name: "fast actions", alert: "PlayerSessionsGameLiftSlow", eval: "30m",
			series: map[string]string{
				bucket("playersessions_gamelift_request_duration_seconds", `action="CreatePlayerSession"`, "0.1"):  "0+10x40",
				bucket("playersessions_gamelift_request_duration_seconds", `action="CreatePlayerSession"`, "+Inf"): "0+10x40"}},

		{name: "allocations failing", alert: "PlayerSessionsAgonesAllocationFailures", eval: "30m",
			series: map[string]string{s("playersessions_agones_allocations_total", `outcome="UnAllocated"`): "0+1x40"}, fire: []map[string]string{{}}},
		{name: "allocations fine", alert: "PlayerSessionsAgonesAllocationFailures", eval: "30m",
			series: map[string]string{s("playersessions_agones_allocations_total", `outcome="Allocated"`): "0+1x40",
				s("playersessions_agones_allocations_total", `outcome="Contention"`): "0+1x40"}},
	}
}

// rules reads the PrometheusRule's groups (a Prometheus rule file's content) and its alerting rules.
func rules(t *testing.T) ([]byte, map[string]rule) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "prometheus", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec struct {
			Groups []struct {
				Rules []rule `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &pr); err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	file, err := yaml.Marshal(spec["spec"])
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]rule{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			byName[r.Alert] = r
		}
	}
	return file, byName
}

var labelRef = regexp.MustCompile(`\{\{ \$labels\.(\w+) \}\}`)

// TestAlerts runs promtool's unit tests of every alert; every alert has a case that fires it, and one that
// does not.
func TestAlerts(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		t.Fatal("PROMTOOL is not set: run make test, which builds promtool with hack/promtool.sh")
	}
	file, byName := rules(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	var tests []map[string]any
	for _, c := range cases() {
		r, ok := byName[c.alert]
		if !ok {
			t.Fatalf("case %q: no alert %s in the rules", c.name, c.alert)
		}
		var series []map[string]string
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range c.series {
				if !yield(k) {
					return
				}
			}
		}) {
			series = append(series, map[string]string{"series": k, "values": c.series[k]})
		}
		var exp []map[string]any
		for _, labels := range c.fire {
			all := map[string]string{}
			for k, v := range r.Labels {
				all[k] = v
			}
			for k, v := range labels {
				all[k] = v
			}
			annotations := map[string]string{}
			for k, v := range r.Annotations {
				v = labelRef.ReplaceAllStringFunc(v, func(m string) string { return all[labelRef.FindStringSubmatch(m)[1]] })
				annotations[k] = strings.ReplaceAll(v, "{{ $value }}", c.value)
			}
			exp = append(exp, map[string]any{"exp_labels": all, "exp_annotations": annotations})
		}
		if len(exp) > 0 {
			fires[c.alert] = true
		} else {
			quiet[c.alert] = true
		}
		tests = append(tests, map[string]any{
			"name": c.name, "interval": "1m", "input_series": series,
			"alert_rule_test": []map[string]any{{"eval_time": c.eval, "alertname": c.alert, "exp_alerts": exp}},
		})
	}
	for name := range byName {
		if !fires[name] || !quiet[name] {
			t.Errorf("alert %s: needs a case that fires it and one that does not", name)
		}
	}
	unit, err := yaml.Marshal(map[string]any{"rule_files": []string{"rules.yaml"}, "evaluation_interval": "1m", "tests": tests})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tests.yaml"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "tests.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRunbooks: every alert links a runbook section of docs/operations.md that exists.
func TestRunbooks(t *testing.T) {
	_, byName := rules(t)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range byName {
		want := "https://github.com/playersessions/operator/blob/main/docs/operations.md#" + strings.ToLower(name)
		if r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", name, r.Annotations["runbook_url"], want)
		}
		if !strings.Contains(string(doc), "### "+name+"\n") {
			t.Errorf("%s: docs/operations.md has no section %q", name, "### "+name)
		}
	}
}
