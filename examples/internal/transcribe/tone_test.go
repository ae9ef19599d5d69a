package transcribe

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestToneShape(t *testing.T) {
	t.Parallel()
	src := NewTone(2*time.Second, 200)
	require.Equal(t, int64(2*ToneSampleRate), src.Frames())
	x := readAll(t, src)
	require.Len(t, x, 2*ToneSampleRate)
	block := ToneSampleRate / 2
	peak := func(b int) float64 {
		p := 0.0
		for _, v := range x[b*block : (b+1)*block] {
			p = max(p, math.Abs(v))
		}
		return p
	}
	for b := range 3 {
		require.InDelta(t, 0.5, peak(b), 0.01, "block %d is a note", b)
	}
	require.Zero(t, peak(3), "every fourth block is silent")

	n, err := src.Read(make([]float64, 4))
	require.Zero(t, n)
	require.True(t, errors.Is(err, io.EOF))
}

func TestToneEmpty(t *testing.T) {
	t.Parallel()
	src := NewTone(-time.Second, 200)
	require.Zero(t, src.Frames())
	_, err := src.Read(make([]float64, 1))
	require.ErrorIs(t, err, io.EOF)
}
