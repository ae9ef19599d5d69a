package jobs

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBatchContextDeadlines(t *testing.T) {
	t.Parallel()
	bg := context.Background()
	short, cancelShort := context.WithTimeout(bg, time.Second)
	defer cancelShort()
	long, cancelLong := context.WithTimeout(bg, 3*time.Second)
	defer cancelLong()
	req := func(ctx context.Context) *enqueueReq { return &enqueueReq{ctx: ctx} }

	// Alone: the caller's own context, canceled with it.
	own, cancelOwn := context.WithCancel(bg)
	self := req(own)
	ctx, cancel := batchContext(self, []*enqueueReq{self})
	cancelOwn()
	<-ctx.Done()
	cancel()

	// Shared: the latest deadline, not canceled with the leader.
	self = req(short)
	ctx, cancel = batchContext(self, []*enqueueReq{self, req(long)})
	defer cancel()
	d, ok := ctx.Deadline()
	require.True(t, ok)
	want, _ := long.Deadline()
	require.Equal(t, want, d)

	// A caller without a deadline caps the write at bookkeepingTimeout.
	ctx2, cancel2 := batchContext(self, []*enqueueReq{self, req(bg)})
	defer cancel2()
	d, ok = ctx2.Deadline()
	require.True(t, ok)
	require.WithinDuration(t, time.Now().Add(bookkeepingTimeout), d, time.Second)
	require.NoError(t, ctx2.Err())
}
