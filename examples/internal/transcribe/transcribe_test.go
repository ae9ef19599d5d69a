package transcribe

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a fake Reporter that keeps every report.
type recorder struct {
	mu       sync.Mutex
	fraction []float64
	message  []string
	err      error         // returned by Report when set
	onReport func(float64) // called after recording
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

func TestRunTone(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	out, err := Run(t.Context(), NewTone(4*time.Second, 200), Options{Language: "en"}, rec)
	require.NoError(t, err)

	require.Equal(t, 4.0, out.Duration)
	require.Equal(t, "en", out.Language)
	require.Len(t, out.Segments, 8)
	for i, s := range out.Segments {
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
	out, err := Run(t.Context(), NewTone(10*time.Second, 200), Options{SegmentLength: time.Millisecond}, &recorder{})
	require.NoError(t, err)
	require.LessOrEqual(t, len(out.Segments), MaxSegments)
	require.Greater(t, len(out.Segments), MaxSegments/2)
	require.InDelta(t, 10, out.Segments[len(out.Segments)-1].End, 1e-6)
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
	_, err := Run(ctx, NewTone(4*time.Second, 200), Options{}, rec)
	require.ErrorIs(t, err, stop)
	require.Len(t, rec.fraction, 5, "stops right after the segment that saw the cancel")
}

func TestRunCancelDuringDelay(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	rec := &recorder{onReport: func(f float64) {
		if f == 0 {
			cancel() // canceled before the first segment's delay ends
		}
	}}
	_, err := Run(ctx, NewTone(time.Second, 200), Options{Delay: time.Hour}, rec)
	require.ErrorIs(t, err, context.Canceled)
}

func TestRunReporterError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Run(t.Context(), NewTone(time.Second, 200), Options{}, &recorder{err: boom})
	require.ErrorIs(t, err, boom)
}

func TestRunTruncatedSource(t *testing.T) {
	t.Parallel()
	_, err := Run(t.Context(), &shortSource{Source: NewTone(time.Second, 200)}, Options{}, &recorder{})
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
		if _, err := Run(b.Context(), NewTone(time.Minute, 200), Options{}, &recorder{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(60*float64(b.N)/b.Elapsed().Seconds(), "audio-s/s")
}
