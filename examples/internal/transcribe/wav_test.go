package transcribe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wavBytes builds a WAV file with the given fmt fields and raw data.
func wavBytes(format, channels, rate, bits int, data []byte) []byte {
	le := binary.LittleEndian
	var b []byte
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, uint32(36+len(data)))
	b = append(b, "WAVE"...)
	b = append(b, "LIST"...) // an unrelated chunk to skip, odd-sized with a pad byte
	b = le.AppendUint32(b, 3)
	b = append(b, 'a', 'b', 'c', 0)
	b = append(b, "fmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, uint16(format))
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*channels*bits/8))
	b = le.AppendUint16(b, uint16(channels*bits/8))
	b = le.AppendUint16(b, uint16(bits))
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func readAll(t *testing.T, src Source) []float64 {
	t.Helper()
	var out []float64
	buf := make([]float64, 3) // small, to cross frame boundaries
	for {
		n, err := src.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
	}
}

func TestWAVEncodings(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	var f32, f64, pcm24, pcm32 []byte
	for _, v := range []float64{0.5, -0.25} {
		f32 = le.AppendUint32(f32, math.Float32bits(float32(v)))
		f64 = le.AppendUint64(f64, math.Float64bits(v))
		i24 := int32(v * (1 << 23))
		pcm24 = append(pcm24, byte(i24), byte(i24>>8), byte(i24>>16))
		pcm32 = le.AppendUint32(pcm32, uint32(int32(v*(1<<31))))
	}
	tests := []struct {
		name string
		file []byte
		want []float64
	}{
		{"pcm8", wavBytes(formatPCM, 1, 8000, 8, []byte{192, 96}), []float64{0.5, -0.25}},
		{"pcm16 stereo mixed", wavBytes(formatPCM, 2, 8000, 16, le.AppendUint16(le.AppendUint16(nil, 1<<14), 0)), []float64{0.25}},
		{"pcm24", wavBytes(formatPCM, 1, 8000, 24, pcm24), []float64{0.5, -0.25}},
		{"pcm32", wavBytes(formatPCM, 1, 8000, 32, pcm32), []float64{0.5, -0.25}},
		{"float32", wavBytes(formatFloat, 1, 44100, 32, f32), []float64{0.5, -0.25}},
		{"float64", wavBytes(formatFloat, 1, 44100, 64, f64), []float64{0.5, -0.25}},
		{"partial trailing frame ignored", wavBytes(formatPCM, 1, 8000, 16, []byte{0, 0x40, 7}), []float64{0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src, err := NewWAVReader(bytes.NewReader(tt.file))
			require.NoError(t, err)
			require.Equal(t, int64(len(tt.want)), src.Frames())
			got := readAll(t, src)
			require.InDeltaSlice(t, tt.want, got, 1e-6)
		})
	}
}

func TestWAVRejectsMalformed(t *testing.T) {
	t.Parallel()
	good := wavBytes(formatPCM, 1, 8000, 16, make([]byte, 8))
	tests := []struct {
		name string
		file []byte
	}{
		{"empty", nil},
		{"not riff", append([]byte("RIFX"), good[4:]...)},
		{"not wave", append(append([]byte{}, good[:8]...), append([]byte("AVI "), good[12:]...)...)},
		{"header only", good[:12]},
		{"alaw", wavBytes(6, 1, 8000, 8, []byte{1})},
		{"12 bits", wavBytes(formatPCM, 1, 8000, 12, []byte{1, 2})},
		{"float16", wavBytes(formatFloat, 1, 8000, 16, []byte{1, 2})},
		{"zero channels", wavBytes(formatPCM, 0, 8000, 16, nil)},
		{"17 channels", wavBytes(formatPCM, 17, 8000, 16, nil)},
		{"zero rate", wavBytes(formatPCM, 1, 0, 16, nil)},
		{"huge rate", wavBytes(formatPCM, 1, 1_000_000, 16, nil)},
		{"data before fmt", append(append([]byte{}, good[:12]...), []byte("data\x00\x00\x00\x00")...)},
		{"fmt cut short", good[:30]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewWAVReader(bytes.NewReader(tt.file))
			require.ErrorIs(t, err, ErrBadAudio)
		})
	}
}

func TestWAVTruncatedData(t *testing.T) {
	t.Parallel()
	file := wavBytes(formatPCM, 1, 8000, 16, make([]byte, 8))
	src, err := NewWAVReader(bytes.NewReader(file[:len(file)-4]))
	require.NoError(t, err)
	buf := make([]float64, 8)
	n, err := src.Read(buf)
	require.Equal(t, 2, n)
	require.ErrorIs(t, err, ErrBadAudio)
}

func TestEncodeWAVRoundTrip(t *testing.T) {
	t.Parallel()
	var file bytes.Buffer
	require.NoError(t, EncodeWAV(&file, NewTone(time.Second, 300)))
	src, err := NewWAVReader(&file)
	require.NoError(t, err)
	require.Equal(t, ToneSampleRate, src.SampleRate())
	require.Equal(t, int64(ToneSampleRate), src.Frames())
	got := readAll(t, src)
	want := readAll(t, NewTone(time.Second, 300))
	require.InDeltaSlice(t, want, got, 1.0/(1<<14))
}

func FuzzNewWAVReader(f *testing.F) {
	f.Add(wavBytes(formatPCM, 1, 8000, 16, []byte{1, 2, 3, 4}))
	f.Add(wavBytes(formatFloat, 2, 8000, 32, make([]byte, 16)))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := NewWAVReader(bytes.NewReader(b))
		if err != nil {
			require.ErrorIs(t, err, ErrBadAudio)
			return
		}
		buf := make([]float64, 64)
		for range 1000 {
			n, err := src.Read(buf)
			for _, v := range buf[:n] {
				require.True(t, v >= -1 && v <= 1, "sample %v out of range", v)
			}
			if err != nil {
				return
			}
		}
	})
}
