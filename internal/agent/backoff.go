package agent

import (
	"math/rand/v2"
	"time"
)

// backoff doubles a delay from its base up to 30 times the base, with up to
// 20% jitter so that many agents do not retry in step.
type backoff struct {
	base, cur time.Duration
}

func newBackoff(base time.Duration) *backoff { return &backoff{base: base} }

func (b *backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.base
	} else {
		b.cur = min(2*b.cur, 30*b.base)
	}
	return b.cur + rand.N(b.cur/5+1)
}

func (b *backoff) Reset() { b.cur = 0 }
