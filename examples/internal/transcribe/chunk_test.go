package transcribe

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPlanChunks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		d, chunk time.Duration
		want     []Window
	}{
		{"fits", 60 * time.Second, 60 * time.Second, nil},
		{"no chunking", 10 * time.Minute, 0, nil},
		{"even", 3 * time.Second, time.Second, []Window{{0, 1000}, {1000, 1000}, {2000, 1000}}},
		{"last shorter", 2500 * time.Millisecond, time.Second, []Window{{0, 1000}, {1000, 1000}, {2000, 500}}},
		{"partial millisecond reaches the end", 1500*time.Millisecond + 1, time.Second, []Window{{0, 1000}, {1000, 501}}},
		{"chunk rounded up", 3 * time.Second, 1500*time.Millisecond - 1, []Window{{0, 1500}, {1500, 1500}}},
		{"at least a segment", 2 * time.Second, time.Millisecond, []Window{{0, 500}, {500, 500}, {1000, 500}, {1500, 500}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, PlanChunks(tt.d, tt.chunk))
		})
	}
	t.Run("at most MaxChunks", func(t *testing.T) {
		t.Parallel()
		ws := PlanChunks(time.Hour, time.Second)
		require.Len(t, ws, MaxChunks)
		require.Equal(t, Window{0, 36000}, ws[0])
		require.Equal(t, Window{99 * 36000, 36000}, ws[99])
	})
}

// transcribeWindows runs one transcription per window of open() and
// returns their segments in order, with their transcripts.
func transcribeWindows(t *testing.T, open func() Source, ws []Window) ([]Segment, []Transcript) {
	t.Helper()
	var segs []Segment
	var outs []Transcript
	for _, w := range ws {
		rec := &recorder{}
		req := Request{StartMS: w.StartMS, LengthMS: w.LengthMS}
		start, length := req.window()
		out, err := Run(t.Context(), open(), State{}, Options{Start: start, Length: length}, rec)
		require.NoError(t, err)
		require.Len(t, rec.output(), out.Segments)
		segs = append(segs, rec.output()...)
		outs = append(outs, out)
	}
	return segs, outs
}

// The windows of PlanChunks, transcribed one by one, give the segments of
// one transcription of the whole audio, each once and with its times: for
// a tone, for a long tone whose segments are longer than half a second
// (MaxSegments), and for a WAV file whose rate and length do not divide
// into milliseconds evenly.
func TestRunWindowsJoinToTheWhole(t *testing.T) {
	t.Parallel()
	var wav bytes.Buffer
	require.NoError(t, EncodeWAV(&wav, &resampled{Source: NewTone(7*time.Second+333*time.Millisecond, 250), rate: 11025}))
	tests := []struct {
		name  string
		open  func() Source
		chunk time.Duration
	}{
		{"tone", func() Source { return NewTone(10*time.Second, 200) }, 3 * time.Second},
		{"long tone", func() Source { return NewTone(40*time.Minute, 200) }, 7 * time.Minute},
		{"wav", func() Source {
			src, err := NewWAVReader(bytes.NewReader(wav.Bytes()))
			require.NoError(t, err)
			return src
		}, 1100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			whole := &recorder{}
			want, err := Run(t.Context(), tt.open(), State{}, Options{}, whole)
			require.NoError(t, err)
			src := tt.open()
			d := time.Duration(float64(src.Frames()) / float64(src.SampleRate()) * float64(time.Second))
			ws := PlanChunks(d, tt.chunk)
			require.Greater(t, len(ws), 1)
			segs, outs := transcribeWindows(t, tt.open, ws)
			require.Equal(t, whole.output(), segs)
			sum := 0.0
			for _, o := range outs {
				require.Positive(t, o.Segments, "no window is empty")
				sum += o.Duration
			}
			require.InDelta(t, want.Duration, sum, 1e-6, "the windows cover the audio")
		})
	}
}

// A transcription of a window resumes from its checkpoint within the
// window, and refuses a checkpoint from outside it.
func TestRunWindowResumes(t *testing.T) {
	t.Parallel()
	opt := Options{Start: 2 * time.Second, Length: 2 * time.Second, CheckpointInterval: time.Nanosecond}
	full := &recorder{}
	want, err := Run(t.Context(), NewTone(6*time.Second, 200), State{}, opt, full)
	require.NoError(t, err)
	require.Equal(t, 4, want.Segments)
	require.Equal(t, 2.0, want.Duration)
	require.InDelta(t, 2.0, full.output()[0].Start, 1e-9, "segments keep the audio's times")
	require.Equal(t, []int{5, 6, 7}, full.nexts(), "Next counts from the start of the audio")

	resumed := &recorder{}
	got, err := Run(t.Context(), NewTone(6*time.Second, 200), full.checkpoints[1], opt, resumed)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, 0.5, resumed.fraction[0])
	require.Equal(t, "resuming at segment 3/4", resumed.message[0])
	require.Equal(t, full.output()[2:], resumed.output())

	other := Options{Start: 4 * time.Second}
	_, err = Run(t.Context(), NewTone(6*time.Second, 200), full.checkpoints[0], other, &recorder{})
	require.ErrorIs(t, err, ErrBadCheckpoint, "a checkpoint before the window")
}

func TestRunWindowAfterTheEnd(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	out, err := Run(t.Context(), NewTone(2*time.Second, 200), State{}, Options{Start: 5 * time.Second}, rec)
	require.NoError(t, err)
	require.Equal(t, Transcript{}, out)
	require.Empty(t, rec.output())
	require.Equal(t, []float64{0}, rec.fraction)
}

// resampled is a Source read at another sample rate than its own: its
// frames, reinterpreted, are enough for a test of odd rates.
type resampled struct {
	Source
	rate int
}

func (r *resampled) SampleRate() int { return r.rate }
