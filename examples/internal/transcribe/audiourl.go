package transcribe

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Limits of an audio URL.
const (
	// MaxToneDuration is the longest tone a "tone:" URL may ask for.
	MaxToneDuration = time.Hour
	// DefaultToneHz is the base frequency of a tone without "hz".
	DefaultToneHz = 220
	// MaxAudioURLLength is the longest audio URL accepted, in bytes.
	MaxAudioURLLength = 1024
)

// AudioURL is a parsed audio location. Exactly one of Tone and File is set.
//
// Two forms are understood:
//
//	tone:20s            a generated tone of 20 s (optionally tone:20s?hz=330)
//	file:talk.wav       a WAV file inside the audio directory (also plain "talk.wav")
//
// Other schemes, such as http, are refused: the example never fetches
// user-supplied URLs, so it cannot be used to probe the network.
type AudioURL struct {
	Tone time.Duration // length of a generated tone
	Hz   float64       // base frequency of the tone
	File string        // slash-separated path relative to the audio directory
}

// ParseAudioURL parses and validates s. Errors are meant for the user and
// name what is wrong without echoing long input back.
func ParseAudioURL(s string) (AudioURL, error) {
	switch {
	case s == "":
		return AudioURL{}, errors.New("is required")
	case len(s) > MaxAudioURLLength:
		return AudioURL{}, fmt.Errorf("is longer than %d bytes", MaxAudioURLLength)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return AudioURL{}, errors.New("contains control characters")
	}
	if !strings.Contains(s, ":") {
		s = "file:" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return AudioURL{}, errors.New("is not a valid URL")
	}
	switch u.Scheme {
	case "tone":
		return parseTone(u)
	case "file":
		return parseFile(u)
	}
	return AudioURL{}, errors.New(`must be a "tone:" URL such as tone:20s or a "file:" URL naming a WAV file in the audio directory`)
}

func parseTone(u *url.URL) (AudioURL, error) {
	d, err := time.ParseDuration(u.Opaque)
	switch {
	case err != nil:
		return AudioURL{}, fmt.Errorf("tone length must be a duration such as 20s, at most %v", MaxToneDuration)
	case d <= 0:
		return AudioURL{}, errors.New("tone length must be above zero, such as 20s")
	case d > MaxToneDuration:
		return AudioURL{}, fmt.Errorf("tone length must be at most %v", MaxToneDuration)
	}
	hz := float64(DefaultToneHz)
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return AudioURL{}, errors.New("has a malformed query")
	}
	for k := range q {
		if k != "hz" {
			return AudioURL{}, fmt.Errorf("has an unknown parameter %q", clip(k, 32))
		}
	}
	if v := q.Get("hz"); v != "" {
		hz, err = strconv.ParseFloat(v, 64)
		if err != nil || !(hz >= 50 && hz <= 2000) {
			return AudioURL{}, errors.New("hz must be a number from 50 to 2000")
		}
	}
	return AudioURL{Tone: d, Hz: hz}, nil
}

func parseFile(u *url.URL) (AudioURL, error) {
	p := u.Opaque
	if p == "" {
		p = strings.TrimPrefix(u.Path, "/")
	}
	if u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
		return AudioURL{}, errors.New("file URLs take a relative path only, such as file:talk.wav")
	}
	if p == "" || !filepath.IsLocal(filepath.FromSlash(p)) {
		return AudioURL{}, errors.New("must name a file inside the audio directory")
	}
	if !strings.EqualFold(filepath.Ext(p), ".wav") {
		return AudioURL{}, errors.New("must name a .wav file")
	}
	return AudioURL{File: p}, nil
}

// String returns the canonical form of a.
func (a AudioURL) String() string {
	if a.File != "" {
		return "file:" + a.File
	}
	if a.Hz == DefaultToneHz {
		return "tone:" + a.Tone.String()
	}
	return "tone:" + a.Tone.String() + "?hz=" + strconv.FormatFloat(a.Hz, 'f', -1, 64)
}

// Open returns the audio of a and a func that releases it. Files are opened
// with [os.OpenInRoot] inside dir, so no path (nor symlink) can leave it. A
// missing file returns an error matching [fs.ErrNotExist]; a file that is
// not a supported WAV one an error matching [ErrBadAudio].
func (a AudioURL) Open(dir string) (Source, io.Closer, error) {
	if a.File == "" {
		return NewTone(a.Tone, a.Hz), io.NopCloser(nil), nil
	}
	if dir == "" {
		return nil, nil, fmt.Errorf("open %s: no audio directory is configured: %w", a.File, fs.ErrNotExist)
	}
	f, err := os.OpenInRoot(dir, filepath.FromSlash(a.File))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("open %s: no such file in the audio directory: %w", a.File, fs.ErrNotExist)
		}
		return nil, nil, fmt.Errorf("open %s: %w", a.File, err)
	}
	src, err := NewWAVReader(f)
	if err != nil {
		_ = f.Close() // the decode error is the one that matters
		return nil, nil, fmt.Errorf("open %s: %w", a.File, err)
	}
	return src, f, nil
}

// clip shortens s to at most n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
