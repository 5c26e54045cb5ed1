package query

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/playersessions/operator/internal/metrics"
)

// TestInstrumented: each resource request is timed with its verb, resource and status code; a watch when
// it starts (its status written), not when it ends; a non-resource request (discovery) is not.
func TestInstrumented(t *testing.T) {
	count := func(verb, resource, code string) int {
		var m dto.Metric
		if err := metrics.QueryDuration.WithLabelValues(verb, resource, code).(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		return int(m.GetHistogram().GetSampleCount())
	}
	h := instrumented(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := apirequest.RequestInfoFrom(r.Context())
		switch info.Verb {
		case "get":
			w.WriteHeader(http.StatusNotFound)
		case "watch":
			w.WriteHeader(http.StatusOK)
			if count("watch", "playersessions", "200") != 1 {
				t.Error("a watch is not timed when it starts")
			}
		default:
			_, _ = w.Write([]byte("{}"))
		}
	}))
	serve := func(info *apirequest.RequestInfo) {
		r := httptest.NewRequest(http.MethodGet, "/apis/query.playersessions.dev/v1alpha1/playersessions", nil)
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(apirequest.WithRequestInfo(r.Context(), info)))
	}
	serve(&apirequest.RequestInfo{IsResourceRequest: true, Verb: "list", Resource: "playersessions"})
	serve(&apirequest.RequestInfo{IsResourceRequest: true, Verb: "get", Resource: "gamesessions"})
	serve(&apirequest.RequestInfo{IsResourceRequest: true, Verb: "watch", Resource: "playersessions"})
	serve(&apirequest.RequestInfo{IsResourceRequest: false, Path: "/apis"})
	for _, c := range []struct{ verb, resource, code string }{{"list", "playersessions", "200"}, {"get", "gamesessions", "404"}, {"watch", "playersessions", "200"}} {
		if got := count(c.verb, c.resource, c.code); got != 1 {
			t.Errorf("%s %s %s timed %d times, want 1", c.verb, c.resource, c.code, got)
		}
	}
}
