package transcribe

import (
	"context"
	"errors"
	"io/fs"

	"github.com/jobsmith/jobs"
)

// Register adds the transcription handler (kind [Kind]) to r: each job
// decodes its [Request], opens the audio (WAV files inside audioDir, or a
// generated tone) and runs [Run] with opt and the request's language. Input
// that can never work (a bad request, a missing or undecodable file) fails
// the job at once with [jobs.Permanent]; other errors are retried.
//
// Register panics, like [jobs.Runner.Handle], when r already has a handler
// for Kind or is running.
func Register(r *jobs.Runner, audioDir string, opt Options) {
	jobs.Handle(r, Kind, func(ctx context.Context, _ *jobs.Job, in Request, p jobs.Reporter) (Transcript, error) {
		audio, err := in.Validate()
		if err != nil {
			return Transcript{}, jobs.Permanent(err)
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
		out, err := Run(ctx, src, o, p)
		if errors.Is(err, ErrBadAudio) {
			err = jobs.Permanent(err)
		}
		return out, err
	})
}
