package query

import (
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"
)

// Default bounds on the query API's open watches (ServerOptions.MaxWatches, MaxWatchesPerUser).
const (
	DefaultMaxWatches        = 2000
	DefaultMaxWatchesPerUser = 100
)

// watchLimits caps the watches open at once, per user and in all: each holds a goroutine and a buffer of
// the manager's memory, which every tenant's controllers and endpoint share. Beyond a cap a watch is
// refused with 429 Too Many Requests (client-go retries after the Retry-After it carries).
type watchLimits struct {
	perUser, total int

	mu     sync.Mutex
	open   int
	byUser map[string]int
}

func newWatchLimits(total, perUser int) *watchLimits {
	if total <= 0 {
		total = DefaultMaxWatches
	}
	if perUser <= 0 {
		perUser = DefaultMaxWatchesPerUser
	}
	return &watchLimits{perUser: perUser, total: total, byUser: map[string]int{}}
}

// acquire takes a watch for user, or says why it cannot.
func (l *watchLimits) acquire(user string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.byUser[user] >= l.perUser:
		return apierrors.NewTooManyRequests(fmt.Sprintf("too many watches open for user %q (at most %d)", user, l.perUser), 5)
	case l.open >= l.total:
		return apierrors.NewTooManyRequests(fmt.Sprintf("too many watches open on this server (at most %d)", l.total), 5)
	}
	l.byUser[user]++
	l.open++
	return nil
}

func (l *watchLimits) release(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byUser[user]--; l.byUser[user] <= 0 {
		delete(l.byUser, user)
	}
}

// limitedWatch gives its watch back to the limits when it stops (the server stops every watch it serves
// when the client goes or the watch ends).
type limitedWatch struct {
	watch.Interface
	once    sync.Once
	release func()
}

func (w *limitedWatch) Stop() {
	w.Interface.Stop()
	w.once.Do(w.release)
}
