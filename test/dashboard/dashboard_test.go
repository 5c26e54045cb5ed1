// Package dashboard checks that the Grafana dashboard (config/grafana) and the alerts (config/prometheus)
// ask only for metrics the manager really exports: it scrapes a running manager (leader election, the
// GameLift endpoint, the query API and the history store on, after a few calls) and looks up every metric
// name their queries use.
package dashboard

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/gamelift"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gamev1 "github.com/playersessions/operator/api/v1alpha1"
	"github.com/playersessions/operator/controllers"
	gl "github.com/playersessions/operator/internal/gamelift"
	"github.com/playersessions/operator/internal/history/historytest"
	"github.com/playersessions/operator/internal/localcp"
	"github.com/playersessions/operator/internal/manager"
	queryv1 "github.com/playersessions/operator/internal/query/v1alpha1"
	"github.com/playersessions/operator/internal/testenv"
)

// The metric families of the manager's own and of controller-runtime that queries may name.
var metricName = regexp.MustCompile(`\b(?:playersessions|controller_runtime|workqueue|leader_election)_[a-z_]+\b`)

// queried is every metric name the dashboard's and the alerts' expressions use.
func queried(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	raw, err := os.ReadFile(testenv.Path("config", "grafana", "playersessions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			for _, name := range metricName.FindAllString(target.Expr, -1) {
				out[name] = append(out[name], "dashboard panel "+p.Title)
			}
		}
	}
	rules, err := os.ReadFile(testenv.Path("config", "prometheus", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if strings.Contains(line, "runbook_url") || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, name := range metricName.FindAllString(line, -1) {
			out[name] = append(out[name], "an alert")
		}
	}
	return out
}

func TestQueriedMetricsAreExported(t *testing.T) {
	want := queried(t)
	if len(want) < 10 {
		t.Fatalf("found only %d metric names in the dashboard and the alerts: the pattern is wrong", len(want))
	}
	families := scrape(t)
	for name, where := range want {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
		typ, ok := families[name]
		if !ok && base != name && families[base] == "histogram" {
			ok, typ = true, "histogram"
		}
		if !ok {
			t.Errorf("%s (in %s) is not exported by the manager", name, strings.Join(slices.Compact(where), ", "))
			continue
		}
		if base != name && typ != "histogram" {
			t.Errorf("%s: %s is a %s, not a histogram", name, base, typ)
		}
	}
}

// scrape runs a manager with everything on (the admission webhook too), makes a few calls, and returns the metric families of its
// /metrics (name -> type).
func scrape(t *testing.T) map[string]string {
	ctx := context.Background()
	cp := testenv.ControlPlane(t, localcp.Options{WebhookDirectoryPaths: []string{testenv.Path("config", "webhook")}})
	admin, err := client.New(cp.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	endpoint := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	queryPort := testenv.FreePort(t)
	opts := manager.Options{Controllers: controllers.DefaultOptions(), MetricsAddr: metricsAddr, ProbeAddr: "0", DisableAgones: true,
		LeaderElect: true, LeaderElectionNamespace: "default", GameLiftAddr: endpoint,
		QueryPort: queryPort, QueryBindAddress: net.ParseIP("127.0.0.1"), QueryCertDir: t.TempDir(), QueryKubeconfig: cp.Kubeconfig,
		QueryTokenKeySecret: types.NamespacedName{Namespace: "default", Name: "query-token-key"},
		HistoryStore:        historytest.Postgres(t),
		WebhookHost:         cp.WebhookHost, WebhookPort: cp.WebhookPort, WebhookCertDir: cp.WebhookCertDir, WebhookClientCAName: cp.WebhookClientCAName}
	opts.Controllers.PlayerSessionTimeout = time.Second
	testenv.StartManager(t, cp, opts)

	// A game session of one seat, two players (one refused, one timing out), GameLift calls, a query.
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "metrics"}}); err != nil {
		t.Fatal(err)
	}
	if err := gl.CreateAccessKey(ctx, admin, gl.DefaultKeyNamespace, "key", "metrics", "AKIDMETRICS", "secret"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &gamev1.GameSession{ObjectMeta: metav1.ObjectMeta{Namespace: "metrics", Name: "arena"},
		Spec: gamev1.GameSessionSpec{FleetID: "fleet-metrics", MaximumPlayerSessionCount: 1, Endpoint: gamev1.Endpoint{IPAddress: "10.0.0.1", Port: 7777}}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"alice", "bob"} {
		if err := admin.Create(ctx, &gamev1.PlayerSession{ObjectMeta: metav1.ObjectMeta{Namespace: "metrics", Name: p},
			Spec: gamev1.PlayerSessionSpec{GameSessionName: "arena", PlayerID: p}}); err != nil && !apierrors.IsForbidden(err) {
			t.Fatal(err) // bob is refused: by the webhook at create (forbidden), or by the controller after
		}
	}
	api := gamelift.New(gamelift.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDMETRICS", "secret", "")})
	direct := rest.CopyConfig(cp.Config)
	direct.Host = fmt.Sprintf("https://127.0.0.1:%d", queryPort)
	direct.TLSClientConfig.Insecure, direct.TLSClientConfig.CAData, direct.TLSClientConfig.CAFile = true, nil, ""
	query := dynamic.NewForConfigOrDie(direct).Resource(queryv1.SchemeGroupVersion.WithResource("playersessions"))

	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	families := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		_, _ = api.DescribePlayerSessions(ctx, &gamelift.DescribePlayerSessionsInput{PlayerId: aws.String("alice")})
		_, _ = query.Namespace("metrics").List(ctx, metav1.ListOptions{})
		resp, err := httpc.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		families = map[string]string{}
		for _, line := range strings.Split(string(raw), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
				families[f[2]] = f[3]
			}
		}
		// Until the workload has shown in every family it feeds.
		if families["playersessions_admissions_refused_total"] != "" && families["playersessions_gamelift_requests_total"] != "" &&
			families["playersessions_query_request_duration_seconds"] != "" && families["leader_election_master_status"] != "" &&
			families["controller_runtime_webhook_requests_total"] != "" {
			break
		}
	}
	return families
}
