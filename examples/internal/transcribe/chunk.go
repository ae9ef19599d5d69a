package transcribe

import "time"

// MaxChunks is the most chunks [PlanChunks] cuts one audio into: longer
// audio gets longer chunks, so that one recording never becomes more jobs
// than this (plus its merge).
const MaxChunks = 100

// Window is a part of an audio, as a chunk's [Request] names it: StartMS
// and LengthMS milliseconds.
type Window struct {
	StartMS  int64
	LengthMS int64
}

// PlanChunks cuts audio of duration d into consecutive windows of chunk
// (rounded up to a whole millisecond, and raised to d/[MaxChunks] and to
// [DefaultSegmentLength] when shorter), the last one shorter and reaching
// the end. Transcribed one job per window (see [Request]) and joined in
// order by a merge ([MergeKind]), they give the segments of one
// transcription of the whole audio. It returns nil when d fits in one
// chunk, or chunk is 0 or less: the audio needs no cutting.
func PlanChunks(d, chunk time.Duration) []Window {
	if chunk <= 0 || d <= chunk {
		return nil
	}
	total := ceilMS(d)
	step := max(ceilMS(chunk), (total+MaxChunks-1)/MaxChunks, DefaultSegmentLength.Milliseconds())
	ws := make([]Window, 0, (total+step-1)/step)
	for start := int64(0); start < total; start += step {
		ws = append(ws, Window{StartMS: start, LengthMS: min(step, total-start)})
	}
	return ws
}

// ceilMS is d in whole milliseconds, rounded up.
func ceilMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
