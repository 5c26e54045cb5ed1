package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestWrittenVersions(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "gs"}
	var w writtenVersions
	if w.behind(key, "5", t0) {
		t.Fatal("behind before any write")
	}
	w.wrote(key, "10", t0)
	for _, tt := range []struct {
		rv   string
		at   time.Duration
		want bool
	}{
		{"9", 0, true},                               // the cache has not seen our write yet
		{"9", maxCacheLag / 2, true},                 // still not
		{"9", maxCacheLag + time.Millisecond, false}, // waited long enough: plan anyway, optimistic concurrency decides
	} {
		if got := w.behind(key, tt.rv, t0.Add(tt.at)); got != tt.want {
			t.Errorf("behind(%s, +%s) = %v, want %v", tt.rv, tt.at, got, tt.want)
		}
	}
	w.wrote(key, "20", t0)
	if w.behind(key, "20", t0) || w.behind(key, "19", t0) {
		t.Error("the cache caught up (20): the write must be forgotten")
	}
	w.wrote(key, "30", t0)
	w.forget(key)
	if w.behind(key, "1", t0) {
		t.Error("forgotten")
	}
}
