package transcribe

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadCheckpoint is matched (with errors.Is) by the error of a
// transcription whose checkpoint does not fit its audio, such as one
// written for other audio.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// State is what a transcription checkpoints: how far it got, and what its
// result needs from the segments done so far. The zero State is the start.
// A new attempt of the job ([jobs.Job.LoadCheckpoint]) passes it to [Run],
// which goes on at segment Next.
type State struct {
	// Next is the index of the next segment, counted from the start of
	// the audio: for the whole audio, the number of segments done, all of
	// them in the output.
	Next int `json:"next"`
	// SegmentFrames is the length of a segment in frames, fixed by the
	// first attempt so that a later one cuts the audio the same way.
	SegmentFrames int64 `json:"segment_frames"`
	// Text is the transcript text of the segments done.
	Text Text `json:"text"`
}

// check returns an ErrBadCheckpoint error when st cannot continue a
// transcription of the segments [first, last) of audio of total frames.
// Run checkpoints only between segments, so a valid State has done at
// least one segment of the window, of at most total frames, and not all
// of them.
func (st State) check(total int64, first, last int) error {
	if st.SegmentFrames < 1 || st.SegmentFrames >= total || st.Next <= first || st.Next >= last || st.Text.Word == "" {
		return fmt.Errorf("%w: segment %d of segments of %d frames in %d frames", ErrBadCheckpoint, st.Next, st.SegmentFrames, total)
	}
	return nil
}

// Text builds the transcript text segment by segment, merging runs of
// the same word: "speech (1.5 s) silence (0.5 s) …". It is part of the
// [State], so it holds the finished runs as text and the open run as its
// word and times.
type Text struct {
	Done  string  `json:"done,omitempty"` // the finished runs
	Word  string  `json:"word,omitempty"` // the open run's word, "" before the first segment
	Start float64 `json:"start,omitempty"`
	End   float64 `json:"end,omitempty"`
}

// add appends a segment.
func (t *Text) add(s Segment) {
	if t.Word == s.Text {
		t.End = s.End
		return
	}
	t.Done = t.String()
	t.Word, t.Start, t.End = s.Text, s.Start, s.End
}

// String returns the text so far.
func (t Text) String() string {
	if t.Word == "" {
		return t.Done
	}
	var b strings.Builder
	b.WriteString(t.Done)
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "%s (%.1f s)", t.Word, t.End-t.Start)
	return b.String()
}
