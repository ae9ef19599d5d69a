package transcribe

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a fake Reporter that keeps every report, and the output and
// checkpoints as jobs.Reporter would store them: a checkpoint stores the
// segments appended before it.
type recorder struct {
	mu          sync.Mutex
	fraction    []float64
	message     []string
	staged      []Segment // appended since the last checkpoint
	stored      []Segment // covered by a checkpoint
	checkpoints []State
	err         error         // returned by Report when set
	onReport    func(float64) // called after recording
}

func (r *recorder) Report(f float64, msg string) error {
	r.mu.Lock()
	r.fraction = append(r.fraction, f)
	r.message = append(r.message, msg)
	r.mu.Unlock()
	if r.onReport != nil {
		r.onReport(f)
	}
	return r.err
}

func (r *recorder) Append(item any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.staged = append(r.staged, item.(Segment))
	return nil
}

func (r *recorder) Checkpoint(ctx context.Context, state any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkpoints = append(r.checkpoints, state.(State))
	r.stored = append(r.stored, r.staged...)
	r.staged = nil
	return nil
}

// output is everything appended, stored or not.
func (r *recorder) output() []Segment {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(slices.Clone(r.stored), r.staged...)
}

// nexts returns the Next of each checkpoint.
func (r *recorder) nexts() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, c := range r.checkpoints {
		out = append(out, c.Next)
	}
	return out
}

func TestRunTone(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	out, err := Run(t.Context(), NewTone(4*time.Second, 200), State{}, Options{Language: "en"}, rec)
	require.NoError(t, err)

	require.Equal(t, 4.0, out.Duration)
	require.Equal(t, "en", out.Language)
	require.Equal(t, 8, out.Segments)
	require.Len(t, rec.output(), 8, "one output item per segment")
	require.Empty(t, rec.checkpoints, "no checkpoint within the default interval: the outcome stores the output")
	for i, s := range rec.output() {
		require.InDelta(t, float64(i)*0.5, s.Start, 1e-9)
		require.InDelta(t, float64(i+1)*0.5, s.End, 1e-9)
		if i%4 == 3 {
			require.Equal(t, "silence", s.Text, "segment %d", i)
			require.Equal(t, -120.0, s.LevelDB)
			continue
		}
		require.Equal(t, "speech", s.Text, "segment %d", i)
		require.InDelta(t, -9.3, s.LevelDB, 0.5, "a 0.5 sine is about -9 dBFS")
		wantHz := 200 * []float64{1, 1.25, 1.5}[i%4]
		require.InDelta(t, wantHz, s.PitchHz, 4, "segment %d", i)
	}
	require.Equal(t, "speech (1.5 s) silence (0.5 s) speech (1.5 s) silence (0.5 s)", out.Text)

	require.Len(t, rec.fraction, 9, "one start report and one per segment")
	require.Equal(t, 0.0, rec.fraction[0])
	require.Equal(t, "decoding 4.0 s of audio", rec.message[0])
	for i := 1; i < len(rec.fraction); i++ {
		require.Greater(t, rec.fraction[i], rec.fraction[i-1])
	}
	require.Equal(t, 1.0, rec.fraction[8])
	require.Equal(t, "segment 8/8", rec.message[8])
}

func TestRunCapsSegments(t *testing.T) {
	t.Parallel()
	// 10 s in 1 ms segments would be 10 000 segments: capped to MaxSegments.
	rec := &recorder{}
	out, err := Run(t.Context(), NewTone(10*time.Second, 200), State{}, Options{SegmentLength: time.Millisecond}, rec)
	require.NoError(t, err)
	segs := rec.output()
	require.Len(t, segs, out.Segments)
	require.LessOrEqual(t, len(segs), MaxSegments)
	require.Greater(t, len(segs), MaxSegments/2)
	require.InDelta(t, 10, segs[len(segs)-1].End, 1e-6)
}

func TestRunCancelWithinOneSegment(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop requested")
	ctx, cancel := context.WithCancelCause(t.Context())
	rec := &recorder{onReport: func(f float64) {
		if f >= 0.5 {
			cancel(stop)
		}
	}}
	_, err := Run(ctx, NewTone(4*time.Second, 200), State{}, Options{}, rec)
	require.ErrorIs(t, err, stop)
	require.Len(t, rec.fraction, 5, "stops right after the segment that saw the cancel")
}

// A checkpoint follows a segment once the interval has passed since the
// previous one: with half a second per segment and 2 s, after every fourth
// segment, and never after the last (the outcome stores those segments).
func TestRunCheckpointsEveryInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		_, err := Run(t.Context(), NewTone(10*time.Second, 200), State{},
			Options{Delay: 500 * time.Millisecond, CheckpointInterval: 2 * time.Second}, rec)
		require.NoError(t, err)
		require.Equal(t, []int{4, 8, 12, 16}, rec.nexts())
		require.Len(t, rec.stored, 16, "each checkpoint stores the segments appended before it")
		require.Len(t, rec.staged, 4, "the last ones go with the outcome")
	})
}

// With a tiny interval, a checkpoint follows every segment but the last,
// after its progress report, so that the stored progress matches it.
func TestRunCheckpointsEverySegment(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	_, err := Run(t.Context(), NewTone(4*time.Second, 200), State{}, Options{CheckpointInterval: time.Nanosecond}, rec)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7}, rec.nexts())
	for _, c := range rec.checkpoints {
		require.Equal(t, int64(ToneSampleRate/2), c.SegmentFrames)
	}
	require.Equal(t, "speech (1.5 s) silence (0.5 s) speech (1.5 s)", rec.checkpoints[6].Text.String())
}

// A run interrupted between a segment and its checkpoint resumes from the
// last checkpoint: it starts at the first segment after it, its progress
// starts there rather than at 0, and the stored output plus what the
// resumed run appends holds every segment exactly once.
func TestRunResumesFromCheckpoint(t *testing.T) {
	t.Parallel()
	full := &recorder{}
	want, err := Run(t.Context(), NewTone(4*time.Second, 200), State{}, Options{Language: "en"}, full)
	require.NoError(t, err)

	crash := errors.New("process died")
	ctx, cancel := context.WithCancelCause(t.Context())
	first := &recorder{onReport: func(f float64) {
		if f == 5.0/8 {
			cancel(crash) // after segment 5 was appended, before its checkpoint
		}
	}}
	_, err = Run(ctx, NewTone(4*time.Second, 200), State{}, Options{CheckpointInterval: time.Nanosecond}, first)
	require.ErrorIs(t, err, crash)
	require.Equal(t, []int{1, 2, 3, 4}, first.nexts())
	require.Len(t, first.stored, 4)

	second := &recorder{}
	got, err := Run(t.Context(), NewTone(4*time.Second, 200), first.checkpoints[3], Options{Language: "en"}, second)
	require.NoError(t, err)
	require.Equal(t, want, got, "the same result as a run without the crash")
	require.Equal(t, 4.0/8, second.fraction[0], "the progress starts at the checkpoint")
	require.Equal(t, "resuming at segment 5/8", second.message[0])
	require.Len(t, second.fraction, 5, "one start report and one per remaining segment")
	require.Equal(t, full.output(), append(first.stored, second.output()...), "every segment exactly once")
}

func TestRunCancelDuringDelay(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	rec := &recorder{onReport: func(f float64) {
		if f == 0 {
			cancel() // canceled before the first segment's delay ends
		}
	}}
	_, err := Run(ctx, NewTone(time.Second, 200), State{}, Options{Delay: time.Hour}, rec)
	require.ErrorIs(t, err, context.Canceled)
}

func TestRunReporterError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Run(t.Context(), NewTone(time.Second, 200), State{}, Options{}, &recorder{err: boom})
	require.ErrorIs(t, err, boom)
}

func TestRunTruncatedSource(t *testing.T) {
	t.Parallel()
	_, err := Run(t.Context(), &shortSource{Source: NewTone(time.Second, 200)}, State{}, Options{}, &recorder{})
	require.ErrorIs(t, err, ErrBadAudio)
}

// shortSource declares twice the frames its Source has.
type shortSource struct{ Source }

func (s *shortSource) Frames() int64 { return 2 * s.Source.Frames() }

func TestRequestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		req   Request
		field string
	}{
		{"ok", Request{AudioURL: "tone:5s", Language: "en"}, ""},
		{"ok region", Request{AudioURL: "tone:5s", Language: "pt-BR"}, ""},
		{"ok script", Request{AudioURL: "tone:5s", Language: "zh-Hant-TW"}, ""},
		{"ok no language", Request{AudioURL: "tone:5s"}, ""},
		{"no url", Request{}, "audio_url"},
		{"bad url", Request{AudioURL: "ftp://x/a.wav"}, "audio_url"},
		{"one letter", Request{AudioURL: "tone:5s", Language: "e"}, "language"},
		{"digits first", Request{AudioURL: "tone:5s", Language: "12"}, "language"},
		{"empty part", Request{AudioURL: "tone:5s", Language: "en--US"}, "language"},
		{"long", Request{AudioURL: "tone:5s", Language: "en-" + strings.Repeat("abcdefgh-", 5)}, "language"},
		{"injection", Request{AudioURL: "tone:5s", Language: "en'; DROP TABLE jobs;--"}, "language"},
		{"ok window", Request{AudioURL: "tone:5s", StartMS: 2000, LengthMS: 1000}, ""},
		{"ok window to the end", Request{AudioURL: "tone:5s", StartMS: 2000}, ""},
		{"negative start", Request{AudioURL: "tone:5s", StartMS: -1}, "start_ms"},
		{"huge start", Request{AudioURL: "tone:5s", StartMS: MaxWindowMS + 1}, "start_ms"},
		{"negative length", Request{AudioURL: "tone:5s", LengthMS: -1}, "length_ms"},
		{"huge length", Request{AudioURL: "tone:5s", LengthMS: MaxWindowMS + 1}, "length_ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.req.Validate()
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			fe, ok := errors.AsType[*FieldError](err)
			require.True(t, ok, "%v", err)
			require.Equal(t, tt.field, fe.Field)
			require.True(t, strings.HasPrefix(fe.Error(), tt.field+" "))
		})
	}
}

// BenchmarkRun measures the stand-in model without its demo delay: decoding
// and measuring one minute of generated audio.
func BenchmarkRun(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(b.Context(), NewTone(time.Minute, 200), State{}, Options{}, &recorder{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(60*float64(b.N)/b.Elapsed().Seconds(), "audio-s/s")
}
