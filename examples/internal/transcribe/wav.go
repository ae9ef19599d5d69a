package transcribe

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrBadAudio is matched (with errors.Is) by every error about audio that
// cannot be decoded: not a WAV file, an unsupported encoding, or a file cut
// short.
var ErrBadAudio = errors.New("bad audio")

// skipper is a [Source] that can move past frames without decoding them.
type skipper interface {
	skip(frames int64) error
}

// Source is decoded mono audio read frame by frame. Implementations are not
// safe for concurrent use.
type Source interface {
	// SampleRate is the number of frames per second.
	SampleRate() int
	// Frames is the total number of frames.
	Frames() int64
	// Read fills dst with the next frames as samples in [-1, 1], the
	// channels mixed down to one. It returns io.EOF after the last frame.
	Read(dst []float64) (int, error)
}

// WAV encodings read by [NewWAVReader].
const (
	formatPCM        = 1
	formatFloat      = 3
	formatExtensible = 0xFFFE
)

// Limits that keep a hostile header from asking for absurd work.
const (
	maxChannels   = 16
	maxSampleRate = 384_000
	maxChunkSkip  = 1 << 20 // bytes of non-audio chunks skipped before "data"
)

// wavReader decodes the data chunk of a PCM or IEEE-float WAV stream.
type wavReader struct {
	r          *bufio.Reader
	format     int
	channels   int
	sampleRate int
	bits       int
	frames     int64
	left       int64 // frames not read yet
	frame      []byte
}

// NewWAVReader parses the RIFF header, the "fmt " chunk and the header of
// the "data" chunk of r and returns a [Source] that decodes the samples as
// they are read. It supports integer PCM of 8, 16, 24 and 32 bits and IEEE
// float of 32 and 64 bits (also in WAVE_FORMAT_EXTENSIBLE), 1 to 16
// channels. Malformed or unsupported input returns an error matching
// [ErrBadAudio]; it never panics on input.
func NewWAVReader(r io.Reader) (Source, error) {
	br := bufio.NewReader(r)
	var riff [12]byte
	if _, err := io.ReadFull(br, riff[:]); err != nil {
		return nil, badAudio("reading RIFF header: %v", err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, badAudio("not a RIFF/WAVE file")
	}
	w := &wavReader{r: br}
	haveFmt := false
	skipped := int64(0)
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, badAudio("no data chunk: %v", err)
		}
		id, size := string(hdr[0:4]), int64(binary.LittleEndian.Uint32(hdr[4:8]))
		switch id {
		case "fmt ":
			if err := w.readFmt(br, size); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, badAudio("data chunk before fmt chunk")
			}
			align := int64(len(w.frame))
			if size%align != 0 {
				size -= size % align // ignore a partial trailing frame
			}
			w.frames, w.left = size/align, size/align
			return w, nil
		default:
			skipped += size + size%2
			if skipped > maxChunkSkip {
				return nil, badAudio("more than %d bytes of chunks before the audio data", maxChunkSkip)
			}
			if _, err := br.Discard(int(size + size%2)); err != nil {
				return nil, badAudio("chunk %q cut short", id)
			}
		}
	}
}

// readFmt parses a "fmt " chunk of the given size.
func (w *wavReader) readFmt(r *bufio.Reader, size int64) error {
	if size < 16 || size > 1024 {
		return badAudio("fmt chunk of %d bytes", size)
	}
	b := make([]byte, size+size%2)
	if _, err := io.ReadFull(r, b); err != nil {
		return badAudio("fmt chunk cut short")
	}
	w.format = int(binary.LittleEndian.Uint16(b[0:2]))
	w.channels = int(binary.LittleEndian.Uint16(b[2:4]))
	w.sampleRate = int(binary.LittleEndian.Uint32(b[4:8]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:14]))
	w.bits = int(binary.LittleEndian.Uint16(b[14:16]))
	if w.format == formatExtensible {
		if size < 40 {
			return badAudio("extensible fmt chunk of %d bytes", size)
		}
		w.format = int(binary.LittleEndian.Uint16(b[24:26])) // first bytes of the sub-format GUID
	}
	switch {
	case w.format == formatPCM && (w.bits == 8 || w.bits == 16 || w.bits == 24 || w.bits == 32):
	case w.format == formatFloat && (w.bits == 32 || w.bits == 64):
	default:
		return badAudio("unsupported encoding: format %d with %d bits per sample", w.format, w.bits)
	}
	if w.channels < 1 || w.channels > maxChannels {
		return badAudio("%d channels (1 to %d supported)", w.channels, maxChannels)
	}
	if w.sampleRate < 1 || w.sampleRate > maxSampleRate {
		return badAudio("sample rate %d Hz (1 to %d supported)", w.sampleRate, maxSampleRate)
	}
	if blockAlign != w.channels*w.bits/8 {
		return badAudio("block align %d does not match %d channels of %d bits", blockAlign, w.channels, w.bits)
	}
	w.frame = make([]byte, blockAlign)
	return nil
}

// SampleRate returns the frames per second of the stream.
func (w *wavReader) SampleRate() int { return w.sampleRate }

// Frames returns the number of frames the data chunk declares.
func (w *wavReader) Frames() int64 { return w.frames }

// Read decodes up to len(dst) frames, mixing the channels to mono.
func (w *wavReader) Read(dst []float64) (int, error) {
	n := 0
	for n < len(dst) && w.left > 0 {
		if _, err := io.ReadFull(w.r, w.frame); err != nil {
			return n, badAudio("data chunk cut short after %d of %d frames", w.frames-w.left, w.frames)
		}
		w.left--
		sum := 0.0
		step := w.bits / 8
		for c := range w.channels {
			sum += w.sample(w.frame[c*step : (c+1)*step])
		}
		dst[n] = sum / float64(w.channels)
		n++
	}
	if n == 0 && w.left == 0 && len(dst) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// skip moves past frames without decoding them.
func (w *wavReader) skip(frames int64) error {
	frames = min(max(frames, 0), w.left)
	for frames > 0 {
		k := min(frames, 1<<20)
		if _, err := w.r.Discard(int(k) * len(w.frame)); err != nil {
			return badAudio("data chunk cut short after %d of %d frames", w.frames-w.left, w.frames)
		}
		w.left -= k
		frames -= k
	}
	return nil
}

// sample decodes one little-endian sample to [-1, 1].
func (w *wavReader) sample(b []byte) float64 {
	if w.format == formatFloat {
		var v float64
		if w.bits == 32 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		if math.IsNaN(v) {
			return 0
		}
		return max(-1, min(1, v))
	}
	switch w.bits {
	case 8: // unsigned
		return (float64(b[0]) - 128) / 128
	case 16:
		return float64(int16(binary.LittleEndian.Uint16(b))) / (1 << 15)
	case 24:
		v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
		return float64(v) / (1 << 23)
	default:
		return float64(int32(binary.LittleEndian.Uint32(b))) / (1 << 31)
	}
}

// EncodeWAV reads all of src and writes it to w as a 16-bit mono PCM WAV
// file. It returns the first error of src or w.
func EncodeWAV(w io.Writer, src Source) error {
	frames := src.Frames()
	if frames*2 > math.MaxUint32-36 {
		return fmt.Errorf("encode wav: %d frames do not fit in a WAV file", frames)
	}
	bw := bufio.NewWriter(w)
	le := binary.LittleEndian
	hdr := make([]byte, 0, 44)
	hdr = append(hdr, "RIFF"...)
	hdr = le.AppendUint32(hdr, uint32(36+frames*2))
	hdr = append(hdr, "WAVEfmt "...)
	hdr = le.AppendUint32(hdr, 16)
	hdr = le.AppendUint16(hdr, formatPCM)
	hdr = le.AppendUint16(hdr, 1)
	hdr = le.AppendUint32(hdr, uint32(src.SampleRate()))
	hdr = le.AppendUint32(hdr, uint32(src.SampleRate()*2))
	hdr = le.AppendUint16(hdr, 2)
	hdr = le.AppendUint16(hdr, 16)
	hdr = append(hdr, "data"...)
	hdr = le.AppendUint32(hdr, uint32(frames*2))
	if _, err := bw.Write(hdr); err != nil {
		return fmt.Errorf("encode wav: %w", err)
	}
	buf := make([]float64, 4096)
	var out [2]byte
	for {
		n, err := src.Read(buf)
		for _, v := range buf[:n] {
			le.PutUint16(out[:], uint16(int16(math.Round(max(-1, min(1, v))*math.MaxInt16))))
			if _, werr := bw.Write(out[:]); werr != nil {
				return fmt.Errorf("encode wav: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("encode wav: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("encode wav: %w", err)
	}
	return nil
}

func badAudio(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadAudio, fmt.Sprintf(format, args...))
}
