package jobs

import (
	"errors"
	"math/rand/v2"
	"time"
)

// backoff returns the delay before the attempt after the given failed one
// (attempt ≥ 1): base·2^(attempt-1), capped at max, drawn at random from the
// upper half [d/2, d] so that retries of many jobs spread out. Consecutive
// attempts never get a shorter range, and no attempt number overflows.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := max
	if attempt < 1 {
		attempt = 1
	}
	// Double without overflow: stop as soon as the cap is reached.
	if n := attempt - 1; n < 63 && base <= max>>n {
		d = base << n
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryDecision is what to do with a failed attempt.
type retryDecision struct {
	retry bool          // run again after delay; otherwise fail
	delay time.Duration // before the next attempt
}

// decideRetry applies Permanent, RetryAfter and the attempt limit to err,
// the error of attempt number attempt out of maxAttempts.
func (r *Runner) decideRetry(err error, attempt, maxAttempts int) retryDecision {
	if _, ok := errors.AsType[*permanentError](err); ok {
		return retryDecision{}
	}
	if attempt >= maxAttempts {
		return retryDecision{}
	}
	if ra, ok := errors.AsType[*retryAfterError](err); ok {
		return retryDecision{retry: true, delay: ra.delay}
	}
	return retryDecision{retry: true, delay: backoff(attempt, r.cfg.retryBase, r.cfg.retryMax)}
}
