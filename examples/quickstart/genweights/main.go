// Command genweights writes the quickstart's synthetic model: a small but
// well-formed safetensors file (two F16 tensors of deterministic
// pseudo-random values), its config.json and a tokenizer.json. The same
// arguments always give the same bytes, so the demo release is reproducible.
//
// Usage: go run ./examples/quickstart/genweights OUT_DIR [SIZE_MIB]
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genweights: error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return fmt.Errorf("usage: genweights OUT_DIR [SIZE_MIB]")
	}
	out, mib := args[0], 4
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > 1<<16 {
			return fmt.Errorf("SIZE_MIB %q: want a whole number of MiB from 1 to 65536", args[1])
		}
		mib = n
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// Two tensors: an embedding of (rows × 256) and a (256 × 256) projection,
	// F16, sized so the file is about mib MiB.
	const width = 256
	projBytes := width * width * 2
	rows := (mib<<20 - projBytes) / (width * 2)
	if rows < 1 {
		rows = 1
	}
	embBytes := rows * width * 2
	header := map[string]any{
		"__metadata__": map[string]string{"format": "pt", "generator": "cvmkit quickstart genweights"},
		"embed.weight": map[string]any{"dtype": "F16", "shape": []int{rows, width}, "data_offsets": []int{0, embBytes}},
		"proj.weight":  map[string]any{"dtype": "F16", "shape": []int{width, width}, "data_offsets": []int{embBytes, embBytes + projBytes}},
	}
	h, err := json.Marshal(header) // map keys are sorted: deterministic
	if err != nil {
		return err
	}
	for len(h)%8 != 0 { // the format pads the header with spaces to 8 bytes
		h = append(h, ' ')
	}
	f, err := os.Create(filepath.Join(out, "model.safetensors"))
	if err != nil {
		return err
	}
	defer f.Close()
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	f.Write(n[:])
	f.Write(h)
	// Values: small F16 numbers (|x| < 2) from a SHA-256 counter stream.
	buf := make([]byte, 0, 1<<16)
	var ctr [8]byte
	for i, left := uint64(0), embBytes+projBytes; left > 0; i++ {
		binary.LittleEndian.PutUint64(ctr[:], i)
		sum := sha256.Sum256(ctr[:])
		for j := 0; j < len(sum) && left > 0; j += 2 {
			v := binary.BigEndian.Uint16(sum[j:])
			v = v&0x8fff | 0x3000 // keep sign, two exponent bits and mantissa: exponents 0x0c..0x0f
			buf = binary.LittleEndian.AppendUint16(buf, v)
			left -= 2
		}
		if len(buf) >= 1<<16 || left == 0 {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	cfg := `{"architectures": ["QuickstartLM"], "hidden_size": 256, "torch_dtype": "float16", "vocab_size": ` + strconv.Itoa(rows) + "}\n"
	tok := `{"version": "1.0", "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "hello": 1, "world": 2}, "unk_token": "[UNK]"}}` + "\n"
	if err := os.WriteFile(filepath.Join(out, "config.json"), []byte(cfg), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "tokenizer.json"), []byte(tok), 0o644)
}
