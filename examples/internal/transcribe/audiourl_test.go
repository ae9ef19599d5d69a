package transcribe

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAudioURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    AudioURL
		wantErr string
	}{
		{in: "tone:20s", want: AudioURL{Tone: 20 * time.Second, Hz: DefaultToneHz}},
		{in: "tone:1m30s?hz=330", want: AudioURL{Tone: 90 * time.Second, Hz: 330}},
		{in: "file:talk.wav", want: AudioURL{File: "talk.wav"}},
		{in: "talks/monday.WAV", want: AudioURL{File: "talks/monday.WAV"}},
		{in: "file:///talk.wav", want: AudioURL{File: "talk.wav"}},
		{in: "", wantErr: "required"},
		{in: strings.Repeat("a", 2000), wantErr: "longer than"},
		{in: "tone:\x00", wantErr: "control"},
		{in: "tone:0s", wantErr: "tone length must be above zero"},
		{in: "tone:-1s", wantErr: "tone length must be above zero"},
		{in: "tone:2h", wantErr: "tone length must be at most 1h0m0s"},
		{in: "tone:abc", wantErr: "tone length"},
		{in: "tone:5s?hz=10", wantErr: "hz must be"},
		{in: "tone:5s?hz=NaN", wantErr: "hz must be"},
		{in: "tone:5s?volume=3", wantErr: "unknown parameter"},
		{in: "http://example.com/a.wav", wantErr: "must be a"},
		{in: "file://host/a.wav", wantErr: "relative path"},
		{in: "file:../etc/passwd.wav", wantErr: "inside the audio directory"},
		{in: "../a.wav", wantErr: "inside the audio directory"},
		{in: "file:talk.mp3", wantErr: ".wav"},
		{in: "tone:5s?hz=%zz", wantErr: "malformed query"},
		{in: "::", wantErr: "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 30)], func(t *testing.T) {
			t.Parallel()
			got, err := ParseAudioURL(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := ParseAudioURL(got.String())
			require.NoError(t, err)
			require.Equal(t, got, again, "String round-trips")
		})
	}
}

func TestAudioURLOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "a.wav"))
	require.NoError(t, err)
	require.NoError(t, EncodeWAV(f, NewTone(time.Second, 200)))
	require.NoError(t, f.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "junk.wav"), []byte("not audio"), 0o600))
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.wav"), []byte("RIFF"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.wav"), filepath.Join(dir, "link.wav")))

	src, closer, err := AudioURL{File: "a.wav"}.Open(dir)
	require.NoError(t, err)
	require.Equal(t, int64(ToneSampleRate), src.Frames())
	require.NoError(t, closer.Close())

	_, _, err = AudioURL{File: "missing.wav"}.Open(dir)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, _, err = AudioURL{File: "a.wav"}.Open("")
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, _, err = AudioURL{File: "junk.wav"}.Open(dir)
	require.ErrorIs(t, err, ErrBadAudio)
	_, _, err = AudioURL{File: "link.wav"}.Open(dir)
	require.Error(t, err, "a symlink out of the directory is refused")
	require.NotErrorIs(t, err, ErrBadAudio)

	src, closer, err = AudioURL{Tone: time.Second, Hz: 300}.Open("")
	require.NoError(t, err)
	require.Equal(t, int64(ToneSampleRate), src.Frames())
	require.NoError(t, closer.Close())
}
