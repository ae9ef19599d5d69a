package transcribe

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/jobsmith/jobs"
)

// MergeKind is the job kind that joins the chunks of a long recording: the
// batch of its chunk jobs ([jobs.Runner.EnqueueBatch]), with the whole
// file's [Request] (no window) as its payload.
const MergeKind = "transcribe.merge"

// RegisterMerge adds the merge handler (kind [MergeKind]) to r. A merge
// runs once its chunks (its DependsOn, transcriptions of windows of the
// audio from [PlanChunks]) have ended: it reads them with
// [jobs.Runner.Get], orders them by their window's start, appends every
// segment of their output to its own in that order and returns one
// [Transcript] of the whole audio, as one transcription of the whole file
// gives: the same segments, text, duration and count. It reports progress
// 1 with a message "joining n chunks" (the batch's progress was already
// theirs together).
//
// A chunk that did not succeed fails the merge with [jobs.Permanent], its
// error naming the chunk ("chunk 2 of 5 (job …) failed: …"); so do a
// merge without chunks, a chunk that is not a transcription, and audio
// that can no longer be read (the merge opens it for its duration).
// Storage errors are retried. [Register] calls RegisterMerge; it panics,
// like [jobs.Runner.Handle], when r already has a handler for MergeKind or
// is running.
func RegisterMerge(r *jobs.Runner, audioDir string) {
	jobs.Handle(r, MergeKind, func(ctx context.Context, j *jobs.Job, in Request, p jobs.Reporter) (Transcript, error) {
		return merge(ctx, r, audioDir, j, in, p)
	})
}

// chunk is one chunk job of a merge, with its window.
type chunk struct {
	job *jobs.Job
	req Request
}

func merge(ctx context.Context, r *jobs.Runner, audioDir string, j *jobs.Job, in Request, p jobs.Reporter) (Transcript, error) {
	audio, err := in.Validate()
	if err != nil {
		return Transcript{}, jobs.Permanent(err)
	}
	if len(j.DependsOn) == 0 {
		return Transcript{}, jobs.Permanent(errors.New("a merge needs the chunks it joins: create it as their batch"))
	}
	src, closer, err := audio.Open(audioDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrBadAudio) {
			err = jobs.Permanent(err)
		}
		return Transcript{}, err
	}
	duration := float64(src.Frames()) / float64(src.SampleRate())
	_ = closer.Close() // read-only: nothing to lose

	chunks := make([]chunk, 0, len(j.DependsOn))
	for _, id := range j.DependsOn {
		cj, err := r.Get(ctx, id)
		if err != nil {
			return Transcript{}, fmt.Errorf("read chunk %s: %w", id, err)
		}
		var req Request
		if cj.Kind != Kind || json.Unmarshal(cj.Payload, &req) != nil {
			return Transcript{}, jobs.Permanent(fmt.Errorf("job %s, which the merge joins, is not a transcription", id))
		}
		chunks = append(chunks, chunk{job: cj, req: req})
	}
	slices.SortStableFunc(chunks, func(a, b chunk) int { return cmp.Compare(a.req.StartMS, b.req.StartMS) })
	for i, c := range chunks {
		if c.job.Status != jobs.StatusSucceeded {
			msg := fmt.Sprintf("chunk %d of %d (job %s, from %.1f s) %s", i+1, len(chunks), c.job.ID, float64(c.req.StartMS)/1000, c.job.Status)
			if c.job.Error != "" {
				msg += ": " + c.job.Error
			}
			return Transcript{}, jobs.Permanent(errors.New(msg))
		}
	}
	if err := p.Report(1, fmt.Sprintf("joining %d chunks", len(chunks))); err != nil {
		return Transcript{}, err
	}
	var text Text
	n := 0
	for i, c := range chunks {
		for item, err := range r.Output(ctx, c.job.ID, 0) {
			if err != nil {
				return Transcript{}, fmt.Errorf("read chunk %d of %d: %w", i+1, len(chunks), err)
			}
			var seg Segment
			if err := json.Unmarshal(item.Data, &seg); err != nil {
				return Transcript{}, jobs.Permanent(fmt.Errorf("chunk %d of %d: output item %d is not a segment", i+1, len(chunks), item.Seq))
			}
			if err := p.Append(item.Data); err != nil {
				return Transcript{}, err
			}
			text.add(seg)
			n++
		}
	}
	return Transcript{Text: text.String(), Language: in.Language, Duration: duration, Segments: n}, nil
}
