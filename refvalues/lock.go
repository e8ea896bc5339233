package refvalues

import (
	"encoding/json"
	"fmt"
	"os"
)

// LockSchema identifies the image.lock.json format (docs/image.md).
const LockSchema = "cvmkit.dev/image-lock/v1"

// Lock is image.lock.json: every input with its resolved digest, every
// output with its sha256 and sha384, the settings and the dm-verity
// parameters — what an auditor needs to rebuild the image and compare.
type Lock struct {
	Schema   string       `json:"schema"`
	Cvmkit   string       `json:"cvmkit"`
	Release  string       `json:"release"`
	Settings LockSettings `json:"settings"`
	Inputs   []LockInput  `json:"inputs"`
	Verity   LockVerity   `json:"verity"`
	Cmdline  string       `json:"cmdline"`
	Outputs  []LockFile   `json:"outputs"`
}

// LockSettings are the build settings that shape the outputs.
type LockSettings struct {
	SourceDateEpoch   int64      `json:"sourceDateEpoch"`
	Filesystem        string     `json:"filesystem"`
	Verity            string     `json:"verity"`
	BlockSize         int        `json:"blockSize"`
	HashAlgorithm     string     `json:"hashAlgorithm"`
	Device            string     `json:"device"`
	HashDevice        string     `json:"hashDevice,omitempty"`
	InitTarget        string     `json:"initTarget,omitempty"`
	InitrdCompression string     `json:"initrdCompression,omitempty"`
	Limits            LockLimits `json:"limits"`
	CmdlineTemplate   string     `json:"cmdlineTemplate"`
}

// LockLimits are the layer limits in force.
type LockLimits struct {
	MaxFileSize  int64 `json:"maxFileSize"`
	MaxTotalSize int64 `json:"maxTotalSize"`
	MaxEntries   int   `json:"maxEntries"`
}

// LockInput is one input, in the order it was applied.
type LockInput struct {
	// Key is where the config names it, like image.base[0].
	Key string `json:"key"`
	// Kind is oci, layout, dir, overlay, file or embedded.
	Kind   string `json:"kind"`
	Source string `json:"source"`
	// Dest is an overlay's destination in the image.
	Dest string `json:"dest,omitempty"`
	// Digest is the file's sha256, the folder's tree digest (DirDigest),
	// or the image manifest's digest an OCI reference resolved to.
	Digest   string `json:"digest"`
	Platform string `json:"platform,omitempty"`
	// Layers are an image's layer digests, bottom first.
	Layers []string `json:"layers,omitempty"`
	// Path is a file's path inside an OCI artifact.
	Path string `json:"path,omitempty"`
}

// LockVerity are the dm-verity parameters (format 1, sha256, 4096-byte
// blocks; Documentation/admin-guide/device-mapper/verity.rst).
type LockVerity struct {
	RootHash string `json:"rootHash"`
	Salt     string `json:"salt"`
	UUID     string `json:"uuid"`
	// DataBlocks and DataSize describe the EROFS image.
	DataBlocks uint64 `json:"dataBlocks"`
	DataSize   int64  `json:"dataSize"`
	// HashOffset is the byte offset of the verity superblock in the hash
	// file (appended: the end of the data; separate: 0).
	HashOffset int64 `json:"hashOffset"`
	// HashStartBlock is dm-verity's hash_start: the tree's first block,
	// after the superblock, counted in the hash device.
	HashStartBlock uint64 `json:"hashStartBlock"`
	HashSize       int64  `json:"hashSize"`
	Levels         int    `json:"levels"`
}

// LockFile is one output.
type LockFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	SHA384 string `json:"sha384"`
}

// Marshal is the lock's canonical encoding: indented JSON, fields in a
// fixed order, a final newline.
func (l *Lock) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ReadLock parses an image.lock.json.
func ReadLock(p string) (*Lock, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if l.Schema != LockSchema {
		return nil, fmt.Errorf("%s: schema %q, want %q", p, l.Schema, LockSchema)
	}
	return &l, nil
}
