package jobspg

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jobsmith/jobs"
	"github.com/stretchr/testify/require"
)

func TestBackoffStaysWithinBounds(t *testing.T) {
	t.Parallel()
	for _, c := range []listenerConfig{
		{backoffMin: 100 * time.Millisecond, backoffMax: 5 * time.Second},
		{backoffMin: time.Minute, backoffMax: time.Minute},
		{backoffMin: time.Hour, backoffMax: 24 * time.Hour},
	} {
		l := &Listener{cfg: c}
		require.LessOrEqual(t, l.backoff(1), c.backoffMin, "the first retry waits at most the minimum")
		for n := 1; n < 200; n++ { // far past any doubling that would overflow
			d := l.backoff(n)
			require.GreaterOrEqual(t, d, c.backoffMin/2, "attempt %d", n)
			require.LessOrEqual(t, d, c.backoffMax, "attempt %d", n)
		}
		require.GreaterOrEqual(t, l.backoff(199), c.backoffMax/2, "late retries wait about the maximum")
	}
}

func TestParsePayload(t *testing.T) {
	t.Parallel()
	a, b := uuid.New(), uuid.New()
	for payload, want := range map[string]jobs.Event{
		"n":                                  {Ready: true},
		"c " + a.String():                    {Canceled: []uuid.UUID{a}},
		"s " + a.String() + " " + b.String(): {Changed: []uuid.UUID{a, b}},
		"s *":                                {Resync: true},
		"c *":                                {Resync: true},
		"s":                                  {Resync: true},
		"s not-a-uuid":                       {Resync: true},
		"x 1 2":                              {Resync: true},
		"":                                   {Resync: true},
	} {
		require.Equal(t, want, parsePayload(payload), "payload %q", payload)
	}
}
