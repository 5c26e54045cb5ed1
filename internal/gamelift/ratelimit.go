package gamelift

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultRatePerKey is how many calls per second one access key may make on one replica by default, with
// bursts of twice as many.
const DefaultRatePerKey = 100

// keyRates holds a token bucket per access key id (keys are few: only authenticated calls reach it).
type keyRates struct {
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

// allow takes a token of keyID's bucket at now, made with perSecond and burst on first use.
func (k *keyRates) allow(keyID string, perSecond float64, burst int, now time.Time) bool {
	if perSecond <= 0 {
		perSecond = DefaultRatePerKey
	}
	if burst <= 0 {
		burst = int(2 * perSecond)
	}
	k.mu.Lock()
	l := k.byKey[keyID]
	if l == nil {
		if k.byKey == nil {
			k.byKey = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(perSecond), burst)
		k.byKey[keyID] = l
	}
	k.mu.Unlock()
	return l.AllowN(now, 1)
}
