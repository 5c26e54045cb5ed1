// Package benchutil holds what the benchmark programs under hack/ share.
package benchutil

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Summary sorts d and prints its p50, p99 and maximum, rounded to the millisecond.
func Summary(d []time.Duration) string {
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return fmt.Sprintf("p50=%s p99=%s max=%s", q(.50).Round(time.Millisecond), q(.99).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
}

// WaitFor polls cond every 20 ms until it holds, or fails after limit.
func WaitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
