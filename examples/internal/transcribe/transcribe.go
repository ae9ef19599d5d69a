// Package transcribe is the stand-in "speech recognizer" shared by the
// example programs: it really decodes audio (a PCM WAV file or a generated
// tone), walks it in segments, measures each one (RMS level and pitch) and
// writes a transcript-shaped result, reporting progress per segment and
// stopping within one segment when its context is canceled.
package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Kind is the job kind of a transcription.
const Kind = "transcribe"

// Defaults of [Options].
const (
	// DefaultSegmentLength is the length of audio measured per step.
	DefaultSegmentLength = 500 * time.Millisecond
	// MaxSegments caps the segments of one transcript, so that the result
	// stays far below the library's payload limit; longer audio gets longer
	// segments.
	MaxSegments = 4000
	// SilenceDB is the level (dBFS) below which a segment is silence.
	SilenceDB = -40.0
)

// Request is the payload of a transcription job.
type Request struct {
	AudioURL string `json:"audio_url"`          // see [ParseAudioURL]
	Language string `json:"language,omitempty"` // a language tag such as "en" or "pt-BR"
}

// FieldError says which field of a [Request] is invalid and why.
type FieldError struct {
	Field  string
	Reason string
}

// Error returns "field reason".
func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

// Validate checks r and returns its parsed audio URL, or a *[FieldError].
func (r Request) Validate() (AudioURL, error) {
	a, err := ParseAudioURL(r.AudioURL)
	if err != nil {
		return AudioURL{}, &FieldError{Field: "audio_url", Reason: err.Error()}
	}
	if !validLanguage(r.Language) {
		return AudioURL{}, &FieldError{Field: "language", Reason: "must be a language tag such as en or pt-BR"}
	}
	return a, nil
}

// validLanguage accepts "" and simple tags: letters and digits in parts of
// 1 to 8 separated by '-', at most 35 bytes, starting with 2 or 3 letters.
func validLanguage(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > 35 {
		return false
	}
	for i, part := range strings.Split(s, "-") {
		if len(part) < 1 || len(part) > 8 || (i == 0 && (len(part) < 2 || len(part) > 3)) {
			return false
		}
		for _, c := range part {
			letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// Segment is one measured stretch of audio. Times are in seconds.
type Segment struct {
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Text    string  `json:"text"`               // "speech" or "silence"
	LevelDB float64 `json:"level_db"`           // RMS level in dBFS, -120 for digital silence
	PitchHz float64 `json:"pitch_hz,omitempty"` // estimated from zero crossings, speech only
}

// Transcript is the result of a transcription job.
type Transcript struct {
	Text     string    `json:"text"`
	Language string    `json:"language,omitempty"`
	Duration float64   `json:"duration"` // seconds of audio
	Segments []Segment `json:"segments"`
}

// Reporter receives progress; [jobs.Reporter] satisfies it.
type Reporter interface {
	Report(fraction float64, message string) error
}

// Options tune a transcription. The zero value works.
type Options struct {
	// SegmentLength is the audio measured per step; 0 means
	// DefaultSegmentLength.
	SegmentLength time.Duration
	// Delay is a pause per segment that stands in for the work of a real
	// model, so that a demo runs long enough to watch; 0 means none.
	Delay time.Duration
	// Language is copied to the transcript.
	Language string
}

// Run transcribes src, reporting progress to p after each segment with a
// message "segment i/n". It returns within one segment after ctx is done,
// with [context.Cause] of ctx. Audio that cannot be decoded returns an
// error matching [ErrBadAudio]. An error from p is returned as is, unless
// ctx is done.
func Run(ctx context.Context, src Source, opt Options, p Reporter) (Transcript, error) {
	rate := src.SampleRate()
	total := src.Frames()
	segLen := opt.SegmentLength
	if segLen <= 0 {
		segLen = DefaultSegmentLength
	}
	segFrames := max(1, int64(segLen.Seconds()*float64(rate)))
	segFrames = max(segFrames, (total+MaxSegments-1)/MaxSegments)
	n := int((total + segFrames - 1) / segFrames)
	out := Transcript{
		Language: opt.Language,
		Duration: float64(total) / float64(rate),
		Segments: make([]Segment, 0, n),
	}
	if err := p.Report(0, fmt.Sprintf("decoding %.1f s of audio", out.Duration)); err != nil {
		return Transcript{}, reportErr(ctx, err)
	}
	buf := make([]float64, segFrames)
	var timer *time.Timer
	for i := range n {
		if err := ctx.Err(); err != nil {
			return Transcript{}, context.Cause(ctx)
		}
		got, err := readFull(src, buf)
		if err != nil {
			return Transcript{}, err
		}
		start := float64(int64(i)*segFrames) / float64(rate)
		out.Segments = append(out.Segments, measure(buf[:got], rate, start))
		if opt.Delay > 0 {
			if timer == nil {
				timer = time.NewTimer(opt.Delay)
				defer timer.Stop()
			} else {
				timer.Reset(opt.Delay)
			}
			select {
			case <-ctx.Done():
				return Transcript{}, context.Cause(ctx)
			case <-timer.C:
			}
		}
		if err := p.Report(float64(i+1)/float64(n), fmt.Sprintf("segment %d/%d", i+1, n)); err != nil {
			return Transcript{}, reportErr(ctx, err)
		}
	}
	out.Text = joinText(out.Segments)
	return out, nil
}

// readFull reads len(buf) frames, or fewer at the end of src.
func readFull(src Source, buf []float64) (int, error) {
	got := 0
	for got < len(buf) {
		k, err := src.Read(buf[got:])
		got += k
		if errors.Is(err, io.EOF) {
			if got == 0 {
				return 0, fmt.Errorf("%w: audio ended before its declared length", ErrBadAudio)
			}
			return got, nil
		}
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// measure computes one segment's level and pitch.
func measure(x []float64, rate int, start float64) Segment {
	sum, crossings := 0.0, 0
	for i, v := range x {
		sum += v * v
		if i > 0 && (x[i-1] < 0) != (v < 0) {
			crossings++
		}
	}
	seg := Segment{Start: round(start, 3), End: round(start+float64(len(x))/float64(rate), 3), LevelDB: -120}
	if len(x) > 0 && sum > 0 {
		seg.LevelDB = round(max(-120, 20*math.Log10(math.Sqrt(sum/float64(len(x))))), 1)
	}
	if seg.LevelDB < SilenceDB {
		seg.Text = "silence"
		return seg
	}
	seg.Text = "speech"
	seg.PitchHz = round(float64(crossings)/2/(float64(len(x))/float64(rate)), 0)
	return seg
}

// joinText writes the segments as text, merging runs of the same word:
// "speech (1.5 s) silence (0.5 s) …".
func joinText(segs []Segment) string {
	var b strings.Builder
	for i := 0; i < len(segs); {
		j := i
		for j < len(segs) && segs[j].Text == segs[i].Text {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s (%.1f s)", segs[i].Text, segs[j-1].End-segs[i].Start)
		i = j
	}
	return b.String()
}

func reportErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("report progress: %w", err)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
