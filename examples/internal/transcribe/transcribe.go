// Package transcribe is the stand-in "speech recognizer" shared by the
// example programs: it really decodes audio (a PCM WAV file or a generated
// tone), walks it in segments, measures each one (RMS level and pitch) and
// writes a transcript-shaped result. It appends each segment to the job's
// output as it goes, reports progress per segment, checkpoints every few
// seconds so that a new attempt resumes where the last one stopped, and
// stops within one segment when its context is canceled. A long recording
// can be cut into windows ([PlanChunks]), each transcribed by a job of its
// own, in parallel, and joined by a merge job ([MergeKind]) into the
// transcript one job for the whole recording would give.
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
	// DefaultCheckpointInterval is the least time between two checkpoints
	// of a transcription; see [Options].
	DefaultCheckpointInterval = 2 * time.Second
)

// Request is the payload of a transcription job. StartMS and LengthMS
// name a window of the audio, in milliseconds, for a job that transcribes
// a part of it (a chunk, see [PlanChunks]): its segments are those of the
// whole audio that start in the window (see [Options].Start). Both zero,
// the default, mean the whole audio; LengthMS 0 after a StartMS means to
// the end.
type Request struct {
	AudioURL string `json:"audio_url"`           // see [ParseAudioURL]
	Language string `json:"language,omitempty"`  // a language tag such as "en" or "pt-BR"
	StartMS  int64  `json:"start_ms,omitempty"`  // 0 to MaxWindowMS
	LengthMS int64  `json:"length_ms,omitempty"` // 0 to MaxWindowMS; 0 means to the end
}

// MaxWindowMS bounds the StartMS and LengthMS of a [Request]: about 11.5
// days, far beyond any audio this package reads, and small enough that
// frame arithmetic cannot overflow.
const MaxWindowMS = 1_000_000_000

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
	if r.StartMS < 0 || r.StartMS > MaxWindowMS {
		return AudioURL{}, &FieldError{Field: "start_ms", Reason: fmt.Sprintf("must be a whole number from 0 to %d", MaxWindowMS)}
	}
	if r.LengthMS < 0 || r.LengthMS > MaxWindowMS {
		return AudioURL{}, &FieldError{Field: "length_ms", Reason: fmt.Sprintf("must be a whole number from 0 (to the end) to %d", MaxWindowMS)}
	}
	return a, nil
}

// window returns r's window as [Options].Start and Length.
func (r Request) window() (start, length time.Duration) {
	return time.Duration(r.StartMS) * time.Millisecond, time.Duration(r.LengthMS) * time.Millisecond
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

// Segment is one measured stretch of audio, and one item of a
// transcription job's output. Times are in seconds.
type Segment struct {
	Start   float64 `json:"start"`
	End     float64 `json:"end"`
	Text    string  `json:"text"`               // "speech" or "silence"
	LevelDB float64 `json:"level_db"`           // RMS level in dBFS, -120 for digital silence
	PitchHz float64 `json:"pitch_hz,omitempty"` // estimated from zero crossings, speech only
}

// Transcript is the result of a transcription job. Its segments are the
// job's output, one item per [Segment] in order ([jobs.Runner.Output]):
// they stream while the job runs, and a result carrying them all would
// have to be rebuilt by every attempt that resumes from a checkpoint.
type Transcript struct {
	Text     string  `json:"text"`
	Language string  `json:"language,omitempty"`
	Duration float64 `json:"duration"` // seconds of audio
	Segments int     `json:"segments"` // how many segments the output holds
}

// Reporter receives a transcription's progress, its segments and its
// checkpoints; [jobs.Reporter] satisfies it.
type Reporter interface {
	Report(fraction float64, message string) error
	Append(item any) error
	Checkpoint(ctx context.Context, state any) error
}

// Options tune a transcription. The zero value works.
type Options struct {
	// SegmentLength is the audio measured per step; 0 means
	// DefaultSegmentLength. A resumed transcription keeps the segment
	// length of its checkpoint.
	SegmentLength time.Duration
	// Delay is a pause per segment that stands in for the work of a real
	// model, so that a demo runs long enough to watch; 0 means none.
	Delay time.Duration
	// CheckpointInterval is the least time between two checkpoints: a
	// checkpoint follows a segment once this long has passed since the
	// previous one (or the start of the attempt), so it comes after each
	// segment or every CheckpointInterval, whichever is rarer. 0 means
	// DefaultCheckpointInterval; a tiny value such as time.Nanosecond
	// checkpoints after every segment.
	CheckpointInterval time.Duration
	// Language is copied to the transcript.
	Language string
	// Start and Length name the window of the audio to transcribe: the
	// segments that start at Start or later and before Start+Length, cut
	// exactly as for the whole audio (so a segment keeps its times, and
	// the windows of [PlanChunks] together have the segments of the whole
	// audio, each once). Length 0 means to the end; both 0, the whole
	// audio. A window after the end of the audio has no segment.
	Start, Length time.Duration
}

// Run transcribes src from st (the zero [State] for a new transcription,
// or the checkpoint of an earlier attempt, which must have come from the
// same audio and window). For each segment of the window
// ([Options].Start) it appends the [Segment] to p's output and reports
// progress with a message "segment i/n", counted within the window; it
// checkpoints the [State] after a segment as [Options.CheckpointInterval]
// says, but not after the last one: the segments appended since the last
// checkpoint are stored with the outcome. A resumed run reports the
// checkpoint's progress first, so the progress does not fall back to 0.
// The transcript's Duration is that of the audio its segments cover.
//
// Run returns within one segment after ctx is done, with [context.Cause]
// of ctx. Audio that cannot be decoded returns an error matching
// [ErrBadAudio]; a State that does not fit src returns an error matching
// [ErrBadCheckpoint]. An error from p is returned wrapped, unless ctx is
// done.
func Run(ctx context.Context, src Source, st State, opt Options, p Reporter) (Transcript, error) {
	rate := src.SampleRate()
	total := src.Frames()
	resumed := st != (State{})
	if !resumed {
		segLen := opt.SegmentLength
		if segLen <= 0 {
			segLen = DefaultSegmentLength
		}
		st.SegmentFrames = segmentFrames(total, rate, segLen)
	}
	first, last := 0, 0
	if st.SegmentFrames > 0 {
		first, last = segmentRange(total, rate, st.SegmentFrames, opt.Start, opt.Length)
	}
	if !resumed {
		st.Next = first
	} else if err := st.check(total, first, last); err != nil {
		return Transcript{}, err
	}
	segFrames := st.SegmentFrames
	n := last - first
	covered := min(int64(last)*segFrames, total) - int64(first)*segFrames
	duration := float64(max(covered, 0)) / float64(rate)
	msg := fmt.Sprintf("decoding %.1f s of audio", duration)
	if resumed {
		msg = fmt.Sprintf("resuming at segment %d/%d", st.Next-first+1, n)
	}
	if err := p.Report(float64(st.Next-first)/float64(max(n, 1)), msg); err != nil {
		return Transcript{}, reportErr(ctx, "report progress", err)
	}
	interval := opt.CheckpointInterval
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	buf := make([]float64, segFrames)
	if n > 0 {
		if err := skip(src, int64(st.Next)*segFrames, buf); err != nil {
			return Transcript{}, err
		}
	}
	lastSave := time.Now()
	var timer *time.Timer
	for i := st.Next; i < last; i++ {
		if err := ctx.Err(); err != nil {
			return Transcript{}, context.Cause(ctx)
		}
		got, err := readFull(src, buf)
		if err != nil {
			return Transcript{}, err
		}
		seg := measure(buf[:got], rate, float64(int64(i)*segFrames)/float64(rate))
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
		if err := p.Append(seg); err != nil {
			return Transcript{}, reportErr(ctx, "append segment", err)
		}
		st.Next = i + 1
		st.Text.add(seg)
		if err := p.Report(float64(i+1-first)/float64(n), fmt.Sprintf("segment %d/%d", i+1-first, n)); err != nil {
			return Transcript{}, reportErr(ctx, "report progress", err)
		}
		if st.Next < last && time.Since(lastSave) >= interval {
			if err := p.Checkpoint(ctx, st); err != nil {
				return Transcript{}, reportErr(ctx, "checkpoint", err)
			}
			lastSave = time.Now()
		}
	}
	return Transcript{Text: st.Text.String(), Language: opt.Language, Duration: duration, Segments: n}, nil
}

// segmentFrames is the length of a segment of audio of total frames at
// rate, for segments of segLen: more when the audio would have more than
// MaxSegments of them.
func segmentFrames(total int64, rate int, segLen time.Duration) int64 {
	return max(1, int64(segLen.Seconds()*float64(rate)), (total+MaxSegments-1)/MaxSegments)
}

// segmentRange returns the segments [first, last) of audio of total
// frames at rate, cut in segments of segFrames, that start in the window
// [start, start+length) (length 0: to the end).
func segmentRange(total int64, rate int, segFrames int64, start, length time.Duration) (first, last int) {
	n := (total + segFrames - 1) / segFrames
	from := min(frameAt(start, rate), total)
	to := total
	if length > 0 {
		to = min(frameAt(start+length, rate), total)
	}
	first = int((from + segFrames - 1) / segFrames)
	last = int(min(n, (to+segFrames-1)/segFrames))
	return first, max(first, last)
}

// frameAt is the first frame at or after d, at rate.
func frameAt(d time.Duration, rate int) int64 {
	ms := min(max(d.Milliseconds(), 0), 2*MaxWindowMS) // whole milliseconds, small enough not to overflow
	return (ms*int64(rate) + 999) / 1000
}

// skip reads and drops the first frames of src, using buf, or skips
// them without decoding when src can.
func skip(src Source, frames int64, buf []float64) error {
	if s, ok := src.(skipper); ok {
		return s.skip(frames)
	}
	for frames > 0 {
		got, err := readFull(src, buf[:min(int64(len(buf)), frames)])
		if err != nil {
			return err
		}
		frames -= int64(got)
	}
	return nil
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

func reportErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
