package transcribe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jobsmith/jobs"
)

// Register adds the transcription handler (kind [Kind]) to r: each job
// decodes its [Request], opens the audio (WAV files inside audioDir, or a
// generated tone) and runs [Run] with opt and the request's language and
// window, from the job's checkpoint when an earlier attempt left one (a
// retry, a rescue after its process died, a release at shutdown). Input
// that can never work (a bad request, a missing or undecodable file, a
// checkpoint that does not fit the audio) fails the job at once with
// [jobs.Permanent]; other errors are retried. The handle options go to
// [jobs.Handle]: [jobs.WithLimit] bounds how many transcriptions run at
// once, in all and per concurrency key (the user), across every process;
// the chunks of a long recording are transcriptions too, so it bounds
// them alike. Register also adds the merge of chunks (kind [MergeKind],
// without those options; see [RegisterMerge]).
//
// Register panics, like [jobs.Runner.Handle], when r already has a handler
// for Kind or MergeKind, or is running.
func Register(r *jobs.Runner, audioDir string, opt Options, hopts ...jobs.HandleOption) {
	jobs.Handle(r, Kind, func(ctx context.Context, j *jobs.Job, in Request, p jobs.Reporter) (Transcript, error) {
		audio, err := in.Validate()
		if err != nil {
			return Transcript{}, jobs.Permanent(err)
		}
		var st State
		if _, err := j.LoadCheckpoint(&st); err != nil {
			return Transcript{}, jobs.Permanent(fmt.Errorf("%w: %w", ErrBadCheckpoint, err))
		}
		src, closer, err := audio.Open(audioDir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrBadAudio) {
				err = jobs.Permanent(err)
			}
			return Transcript{}, err
		}
		defer closer.Close()
		o := opt
		o.Language = in.Language
		o.Start, o.Length = in.window()
		out, err := Run(ctx, src, st, o, p)
		if errors.Is(err, ErrBadAudio) || errors.Is(err, ErrBadCheckpoint) {
			err = jobs.Permanent(err)
		}
		return out, err
	}, hopts...)
	RegisterMerge(r, audioDir)
}
