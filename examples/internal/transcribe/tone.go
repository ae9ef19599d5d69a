package transcribe

import (
	"io"
	"math"
	"time"
)

// ToneSampleRate is the sample rate of the audio made by [NewTone].
const ToneSampleRate = 8000

// toneBlock is the length of one note or pause of a generated tone.
const toneBlock = 500 * time.Millisecond

// tone is a generated "spoken" melody: notes of half a second at hz, 1.25 hz
// and 1.5 hz, with every fourth block silent, so that a transcript of it has
// both speech and silence.
type tone struct {
	hz     float64
	frames int64
	pos    int64
}

// NewTone returns a [Source] of d of deterministic audio at [ToneSampleRate]:
// three notes starting at base frequency hz, then half a second of silence,
// repeated. A d of zero or less gives an empty source.
func NewTone(d time.Duration, hz float64) Source {
	frames := int64(0)
	if d > 0 {
		frames = int64(d.Seconds() * ToneSampleRate)
	}
	return &tone{hz: hz, frames: frames}
}

// SampleRate returns [ToneSampleRate].
func (t *tone) SampleRate() int { return ToneSampleRate }

// Frames returns the number of frames of the whole tone.
func (t *tone) Frames() int64 { return t.frames }

// Read generates the next frames.
func (t *tone) Read(dst []float64) (int, error) {
	if t.pos >= t.frames && len(dst) > 0 {
		return 0, io.EOF
	}
	blockFrames := int64(toneBlock.Seconds() * ToneSampleRate)
	n := 0
	for n < len(dst) && t.pos < t.frames {
		block := t.pos / blockFrames
		v := 0.0
		if block%4 != 3 {
			f := t.hz * []float64{1, 1.25, 1.5}[block%4]
			// A short fade in and out of each note avoids clicks.
			inBlock := float64(t.pos%blockFrames) / float64(blockFrames)
			env := min(1, inBlock*20, (1-inBlock)*20)
			v = 0.5 * env * math.Sin(2*math.Pi*f*float64(t.pos)/ToneSampleRate)
		}
		dst[n] = v
		n++
		t.pos++
	}
	return n, nil
}

// skip moves past frames without generating them.
func (t *tone) skip(frames int64) error {
	t.pos = min(t.pos+max(frames, 0), t.frames)
	return nil
}
