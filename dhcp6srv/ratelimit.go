package dhcp6srv

import "time"

// limiter is a token bucket per key (a client DUID or a source address):
// rate tokens a second, at most burst stored. A client that retransmits
// per RFC 8415 §15 never comes near it; a flood from one client or one
// address is cut off without starving the others.
type limiter struct {
	rate    float64 // tokens per second; <= 0 means unlimited
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the memory a flood of spoofed sources can take: past
// it, idle (full) buckets are swept, and if that is not enough the table
// starts over.
const maxBuckets = 1 << 14

func newLimiter(rate float64, burst int) limiter {
	return limiter{rate: rate, burst: float64(burst), buckets: make(map[string]*bucket)}
}

func (l *limiter) allow(key string, now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) sweep(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
