package transcribe

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunRefusesCheckpointOfOtherAudio(t *testing.T) {
	t.Parallel()
	for _, st := range []State{
		{Next: 8, SegmentFrames: ToneSampleRate / 2, Text: Text{Word: "speech", End: 4}}, // all done: never checkpointed
		{Next: 9, SegmentFrames: ToneSampleRate / 2, Text: Text{Word: "speech", End: 4}}, // past the end
		{Next: 1, SegmentFrames: 4 * ToneSampleRate, Text: Text{Word: "speech", End: 4}}, // one segment: never checkpointed
		{Next: 1, SegmentFrames: 1 << 50, Text: Text{Word: "speech", End: 4}},            // would allocate a huge buffer
		{Next: 2, Text: Text{Word: "speech", End: 1}},                                    // no segment length
		{Next: 2, SegmentFrames: 4000},                                                   // no text
		{Next: -1, SegmentFrames: 4000, Text: Text{Word: "speech", End: 1}},              // negative
		{Next: 1, SegmentFrames: -4000, Text: Text{Word: "speech", End: 1}},              // negative length
		{SegmentFrames: 4000, Text: Text{Word: "speech", End: 1}},                        // nothing done: never checkpointed
	} {
		_, err := Run(t.Context(), NewTone(4*time.Second, 200), st, Options{}, &recorder{})
		require.ErrorIs(t, err, ErrBadCheckpoint, "%+v", st)
	}
}

func TestTextMergesRuns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		words []string
		want  string
	}{
		{"none", nil, ""},
		{"one", []string{"speech"}, "speech (0.5 s)"},
		{"run", []string{"speech", "speech", "speech"}, "speech (1.5 s)"},
		{"alternating", []string{"speech", "silence", "speech"}, "speech (0.5 s) silence (0.5 s) speech (0.5 s)"},
		{"runs", []string{"silence", "silence", "speech", "silence", "silence"}, "silence (1.0 s) speech (0.5 s) silence (1.0 s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var txt Text
			for i, w := range tt.words {
				txt.add(Segment{Start: float64(i) * 0.5, End: float64(i+1) * 0.5, Text: w})
			}
			require.Equal(t, tt.want, txt.String())
		})
	}
}
