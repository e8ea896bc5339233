package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cvmkit/cvmkit/build/initrd"
	"github.com/cvmkit/cvmkit/build/rootfs"
	"github.com/cvmkit/cvmkit/build/tree"
	"github.com/cvmkit/cvmkit/build/verity"
	"github.com/cvmkit/cvmkit/config"
	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/fileio"
	"github.com/cvmkit/cvmkit/outcome"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Output file names in the output folder.
const (
	RootImageName = "rootfs.img"
	HashTreeName  = "rootfs.verity"
	InitrdName    = "initrd.img"
	KernelName    = "vmlinuz"
	CmdlineName   = "cmdline.txt"
	LockName      = "image.lock.json"
)

// Options are the inputs of Build besides the config.
type Options struct {
	// OutDir receives the outputs. It must not exist: the image is built in
	// a hidden sibling folder and renamed into place when complete.
	OutDir string
	// Epoch is SOURCE_DATE_EPOCH: every timestamp in the outputs.
	Epoch time.Time
	// InitBinary is cmd/cvmkit-init for linux/amd64 (internal/initbin);
	// needed unless the config supplies its own initrd.
	InitBinary []byte
	// Version is the cvmkit version recorded in the lock.
	Version string
	// Keychain resolves registry credentials; nil means the usual chain
	// (docker config, credential helpers).
	Keychain authn.Keychain
	// Insecure talks plain HTTP to registries (a local test registry).
	Insecure bool
	// Log receives sanitising notes and progress; nil discards them.
	Log *slog.Logger
}

// Result is what Build wrote.
type Result struct {
	Dir  string
	Lock Lock
}

// Build assembles the guest image described by c.Release.Image: it flattens
// the base sources and overlays into a tree, writes the EROFS root image and
// its dm-verity tree, the initrd with cvmkit-init and the modules, copies the
// kernel, renders the command line and writes image.lock.json. Outputs are a
// function of the inputs and Epoch only.
func Build(ctx context.Context, c *config.Config, o Options) (*Result, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	im := c.Release.Image
	if im.Initrd.File == nil && len(o.InitBinary) == 0 {
		return nil, outcome.UsageError(errors.New("no cvmkit-init binary to put in the initrd: this cvmkit was built without one"),
			"build cvmkit with `make build` (which embeds it), pass --init-binary FILE, or set image.initrd.file")
	}
	lock := Lock{
		Schema:  LockSchema,
		Cvmkit:  o.Version,
		Release: c.Release.Metadata.Name + "@" + c.Release.Metadata.Version,
		Settings: LockSettings{
			SourceDateEpoch: o.Epoch.Unix(),
			Verity:          string(im.RootFS.Verity),
			Device:          im.RootFS.Device,
			BlockSize:       verity.BlockSize,
			HashAlgorithm:   "sha256",
			Filesystem:      "erofs (uncompressed, 4096-byte blocks)",
			Limits:          LockLimits{MaxFileSize: int64(im.RootFS.Limits.MaxFileSize), MaxTotalSize: int64(im.RootFS.Limits.MaxTotalSize), MaxEntries: im.RootFS.Limits.MaxEntries},
			CmdlineTemplate: im.Cmdline,
		},
	}
	if lock.Settings.Verity == "separate" {
		lock.Settings.HashDevice = im.RootFS.HashDevice
	}
	if im.Initrd.File == nil {
		lock.Settings.InitTarget = im.Initrd.Init.Target
		lock.Settings.InitrdCompression = string(im.Initrd.Init.Compression)
	}

	out := filepath.Clean(o.OutDir)
	if err := outsideInputs(c, out); err != nil {
		return nil, err
	}
	err := atomicfile.Dir(out, func(tmp string) error {
		b := &builder{c: c, o: o, tmp: tmp, lock: &lock}
		return b.run(ctx)
	})
	if err != nil {
		return nil, err
	}
	return &Result{Dir: out, Lock: lock}, nil
}

type builder struct {
	c          *config.Config
	o          Options
	tmp        string
	lock       *Lock
	rootDigest LockFile
	// pending are local sources whose tree digest is known once the image
	// has read their files.
	pending []pendingDigest
}

type pendingDigest struct {
	index int // in lock.Inputs
	sd    *tree.SourceDigest
	pin   string
}

func (b *builder) run(ctx context.Context) error {
	im := b.c.Release.Image
	// Spool folder for layer contents: inside the temporary output folder,
	// so nothing is ever written elsewhere; removed before the rename.
	spool := filepath.Join(b.tmp, ".spool")
	if err := os.Mkdir(spool, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(spool)

	t := tree.New(limitsOf(im.RootFS.Limits), spool, b.o.Log)
	for i, base := range im.Base {
		key := fmt.Sprintf("image.base[%d]", i)
		in, err := b.applyBase(ctx, t, key, base)
		if err != nil {
			return err
		}
		b.lock.Inputs = append(b.lock.Inputs, in)
	}
	for i, ov := range im.Overlays {
		key := fmt.Sprintf("image.overlays[%d]", i)
		in, err := b.applyOverlay(t, key, ov)
		if err != nil {
			return err
		}
		b.lock.Inputs = append(b.lock.Inputs, in)
	}
	b.o.Log.Info("root filesystem flattened", "entries", t.Len())

	// The root image and its hash tree.
	rootPath := filepath.Join(b.tmp, RootImageName)
	f, err := os.OpenFile(rootPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// The local sources' files are hashed for their tree digests while the
	// image is written from them.
	hashCtx, stopHashing := context.WithCancel(ctx)
	defer stopHashing()
	for _, p := range b.pending {
		p.sd.Start(hashCtx)
	}
	if err := rootfs.WriteEROFS(f, t.Nodes(), b.o.Epoch, spool); err != nil {
		return fmt.Errorf("writing the EROFS image: %w", err)
	}
	b.o.Log.Info("EROFS image written")
	// The image's data goes to disk while it is hashed below (a CPU-bound
	// pass): the sync at the end then has only the hash tree left to write
	// instead of the whole image.
	early := make(chan error, 1)
	go func() { early <- f.Sync() }()
	for _, p := range b.pending {
		in := &b.lock.Inputs[p.index]
		d, err := p.sd.Sum()
		if err != nil {
			return inputErr(in.Key, err)
		}
		if p.pin != "" && p.pin != d {
			return outcome.InputError(fmt.Errorf("%s: folder %q has tree digest %s, the config pins %s", in.Key, in.Source, d, p.pin),
				"if the change is intended, update the digest")
		}
		in.Digest = d
	}
	dataSize, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if dataSize%verity.BlockSize != 0 {
		return fmt.Errorf("EROFS image is %d bytes, not a multiple of %d", dataSize, verity.BlockSize)
	}
	// Salt and UUID come from the digests of everything that went into the
	// tree (inputs, settings): the same release gives the same salt, any
	// other content another one — without another pass over the image.
	content, err := contentDigest(b.lock)
	if err != nil {
		return err
	}
	p := verity.Params{Salt: verity.DeriveSalt(content), UUID: verity.DeriveUUID(content), Superblock: true}
	hashW, hashBase := io.WriterAt(f), dataSize
	var hf *os.File
	if b.lock.Settings.Verity == "separate" {
		if hf, err = os.OpenFile(filepath.Join(b.tmp, HashTreeName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return err
		}
		defer hf.Close()
		hashW, hashBase = hf, 0
	}
	// The image's sha256 and sha384 for the lock are computed on the other
	// cores while dm-verity reads the data, then over the appended tree.
	fan := newFanHash(sha256.New(), sha512.New384())
	data := bufio.NewReaderSize(io.TeeReader(io.NewSectionReader(f, 0, dataSize), fan), 1<<20)
	res, err := verity.Build(data, dataSize, p, hashW, hashBase)
	if err != nil {
		fan.Close()
		return fmt.Errorf("computing the dm-verity tree: %w", err)
	}
	if hf == nil {
		if _, err := io.Copy(fan, io.NewSectionReader(f, dataSize, res.HashSize)); err != nil {
			fan.Close()
			return err
		}
	}
	sums := fan.Close()
	b.rootDigest = LockFile{Name: RootImageName, Size: fan.n, SHA256: hex.EncodeToString(sums[0]), SHA384: hex.EncodeToString(sums[1])}
	b.o.Log.Info("dm-verity tree written", "root_hash", hex.EncodeToString(res.RootHash[:]))
	hashStart := res.HashStartBlock
	if hf == nil {
		hashStart += res.DataBlocks
	}
	b.lock.Verity = LockVerity{
		RootHash:       hex.EncodeToString(res.RootHash[:]),
		Salt:           hex.EncodeToString(p.Salt),
		UUID:           formatUUID(p.UUID),
		DataBlocks:     res.DataBlocks,
		DataSize:       dataSize,
		HashOffset:     int64(hashStart-res.HashStartBlock) * verity.BlockSize,
		HashStartBlock: hashStart,
		HashSize:       res.HashSize,
		Levels:         res.Levels,
	}
	if err := <-early; err != nil {
		return err
	}
	for _, x := range []*os.File{f, hf} {
		if x != nil {
			if err := x.Sync(); err != nil {
				return err
			}
		}
	}

	b.o.Log.Info("image synced")
	// The kernel.
	if err := b.kernel(ctx); err != nil {
		return err
	}
	// The initrd.
	if err := b.initrd(); err != nil {
		return err
	}
	// The command line.
	root := fmt.Sprintf("cvmkit.root=%s cvmkit.verity=%s,%s,%d,%d", b.lock.Settings.Device,
		b.lock.Verity.RootHash, b.lock.Verity.Salt, res.DataBlocks, hashStart)
	if b.lock.Settings.HashDevice != "" {
		root += " cvmkit.hash=" + b.lock.Settings.HashDevice
	}
	if b.lock.Settings.InitTarget != "" && b.lock.Settings.InitTarget != config.DefaultInitTarget {
		root += " cvmkit.init=" + b.lock.Settings.InitTarget
	}
	cmdline, err := config.RenderCmdline(im.Cmdline, config.CmdlineFields{Root: root, RootHash: b.lock.Verity.RootHash, Salt: b.lock.Verity.Salt})
	if err != nil {
		return outcome.InputError(fmt.Errorf("image.cmdline: %w", err), "fix the template (docs/image.md lists its fields)")
	}
	if im.Initrd.File == nil && !strings.Contains(cmdline, b.lock.Verity.RootHash) {
		b.o.Log.Warn("the command line does not carry the root hash: cvmkit's init will refuse to boot; put {{.Root}} in image.cmdline")
	}
	b.lock.Cmdline = cmdline
	if err := os.WriteFile(filepath.Join(b.tmp, CmdlineName), []byte(cmdline+"\n"), 0o644); err != nil {
		return err
	}

	// Digests of every output, then the lock itself.
	os.RemoveAll(spool)
	names := []string{RootImageName, HashTreeName, InitrdName, KernelName, CmdlineName}
	for _, n := range names {
		d, err := b.rootDigest, error(nil)
		if n != RootImageName {
			d, err = digestFile(filepath.Join(b.tmp, n))
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		d.Name = n
		b.lock.Outputs = append(b.lock.Outputs, d)
	}
	lj, err := b.lock.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.tmp, LockName), lj, 0o644); err != nil {
		return err
	}
	return normaliseModes(b.tmp)
}

// applyBase adds one base source to the tree and returns its lock entry.
func (b *builder) applyBase(ctx context.Context, t *tree.Tree, key string, base config.Base) (LockInput, error) {
	switch {
	case base.Dir != "":
		dir := b.c.Resolve(base.Dir)
		sd, err := t.AddAt(dir, ".", tree.Owner{}, 0)
		if err != nil {
			return LockInput{}, inputErr(key, err)
		}
		b.pending = append(b.pending, pendingDigest{index: len(b.lock.Inputs), sd: sd, pin: string(base.Digest)})
		return LockInput{Key: key, Kind: "dir", Source: string(base.Dir)}, nil
	default:
		img, in, err := b.resolveImage(ctx, key, base.OCI, string(base.Layout), string(base.Digest), base.Platform)
		if err != nil {
			return LockInput{}, err
		}
		layers, err := img.Layers()
		if err != nil {
			return LockInput{}, inputErr(key, err)
		}
		for i, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				return LockInput{}, inputErr(key, err)
			}
			in.Layers = append(in.Layers, ld.String())
			rc, err := l.Uncompressed()
			if err != nil {
				return LockInput{}, inputErr(key, fmt.Errorf("layer %d (%s): %w", i, ld, err))
			}
			err = t.ApplyTar(fmt.Sprintf("layer %d (%s)", i, ld), rc)
			rc.Close()
			if err != nil {
				return LockInput{}, inputErr(key, err)
			}
		}
		return in, nil
	}
}

// applyOverlay copies a host file or folder to its destination.
func (b *builder) applyOverlay(t *tree.Tree, key string, ov config.Overlay) (LockInput, error) {
	src := b.c.Resolve(ov.Src)
	dst := strings.TrimPrefix(ov.Dst, "/")
	sd, err := t.AddAt(src, dst, tree.Owner{UID: uint32(ov.UID), GID: uint32(ov.GID)}, fs.FileMode(ov.Mode))
	if err != nil {
		return LockInput{}, inputErr(key, err)
	}
	b.pending = append(b.pending, pendingDigest{index: len(b.lock.Inputs), sd: sd})
	return LockInput{Key: key, Kind: "overlay", Source: string(ov.Src), Dest: ov.Dst}, nil
}

// kernel copies the kernel into the output.
func (b *builder) kernel(ctx context.Context) error {
	k := b.c.Release.Image.Kernel
	dst := filepath.Join(b.tmp, KernelName)
	if k.Path != "" {
		if err := copyPinned(b.c.Resolve(k.Path), dst, string(k.Digest), "image.kernel"); err != nil {
			return err
		}
		b.lock.Inputs = append(b.lock.Inputs, LockInput{Key: "image.kernel", Kind: "file", Source: string(k.Path), Digest: string(k.Digest)})
		return nil
	}
	img, in, err := b.resolveImage(ctx, "image.kernel", k.OCI, "", "", "linux/amd64")
	if err != nil {
		return err
	}
	in.Path = k.In
	data, err := fileFromArtifact(img, k.In)
	if err != nil {
		return outcome.InputError(fmt.Errorf("image.kernel: %s: %w", k.OCI, err),
			"set image.kernel.in to the kernel's layer title (org.opencontainers.image.title) or its path in a tar layer")
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return err
	}
	b.lock.Inputs = append(b.lock.Inputs, in)
	return nil
}

// initrd writes cvmkit's initrd, or copies the user's.
func (b *builder) initrd() error {
	ir := b.c.Release.Image.Initrd
	dst := filepath.Join(b.tmp, InitrdName)
	if ir.File != nil {
		if err := copyPinned(b.c.Resolve(ir.File.Path), dst, string(ir.File.Digest), "image.initrd.file"); err != nil {
			return err
		}
		b.lock.Inputs = append(b.lock.Inputs, LockInput{Key: "image.initrd.file", Kind: "file", Source: string(ir.File.Path), Digest: string(ir.File.Digest)})
		return nil
	}
	sum := sha256.Sum256(b.o.InitBinary)
	b.lock.Inputs = append(b.lock.Inputs, LockInput{Key: "cvmkit-init", Kind: "embedded", Source: "cmd/cvmkit-init (linux/amd64)", Digest: "sha256:" + hex.EncodeToString(sum[:])})
	entries := []initrd.Entry{
		{Name: "init", Mode: 0o755, Data: b.o.InitBinary},
		{Name: "dev", Mode: fs.ModeDir | 0o755},
		{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Name: "lib", Mode: fs.ModeDir | 0o755},
		{Name: "lib/modules", Mode: fs.ModeDir | 0o755},
		{Name: "newroot", Mode: fs.ModeDir | 0o755},
		{Name: "proc", Mode: fs.ModeDir | 0o755},
		{Name: "sys", Mode: fs.ModeDir | 0o755},
	}
	var load []string
	seen := map[string]bool{}
	for i, m := range ir.Init.Modules {
		key := fmt.Sprintf("image.initrd.init.modules[%d]", i)
		data, err := readPinned(b.c.Resolve(m.Path), string(m.Digest), key)
		if err != nil {
			return err
		}
		name := path.Base(filepath.ToSlash(string(m.Path)))
		if seen[name] {
			return outcome.InputError(fmt.Errorf("%s: a module named %q is already listed", key, name), "list each module once")
		}
		seen[name] = true
		entries = append(entries, initrd.Entry{Name: "lib/modules/" + name, Mode: 0o644, Data: data})
		load = append(load, "/lib/modules/"+name)
		b.lock.Inputs = append(b.lock.Inputs, LockInput{Key: key, Kind: "file", Source: string(m.Path), Digest: string(m.Digest)})
	}
	entries = append(entries, initrd.Entry{Name: "lib/modules/cvmkit.load", Mode: 0o644, Data: []byte(strings.Join(append(load, ""), "\n"))})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	return atomicfile.Write(dst, 0o644, func(w io.Writer) error {
		zw, err := initrd.Compress(w, b.lock.Settings.InitrdCompression)
		if err != nil {
			return err
		}
		if err := initrd.Write(zw, entries, b.o.Epoch.Unix()); err != nil {
			return err
		}
		return zw.Close()
	})
}

// outsideInputs refuses an output folder inside a local folder the image
// is built from: the build would read its own half-written output.
func outsideInputs(c *config.Config, out string) error {
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	check := func(key string, p config.Path) error {
		src, err := filepath.Abs(c.Resolve(p))
		if err != nil {
			return err
		}
		if rel, err := filepath.Rel(src, absOut); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return outcome.UsageError(fmt.Errorf("output %q is inside %s (%q), which goes into the image", out, key, p),
				"choose an output folder outside the image's source folders")
		}
		return nil
	}
	im := c.Release.Image
	for i, b := range im.Base {
		if b.Dir != "" {
			if err := check(fmt.Sprintf("image.base[%d].dir", i), b.Dir); err != nil {
				return err
			}
		}
	}
	for i, ov := range im.Overlays {
		if err := check(fmt.Sprintf("image.overlays[%d].src", i), ov.Src); err != nil {
			return err
		}
	}
	return nil
}

// readPinned reads a file and checks it against its pinned digest (the
// config loader checked it too; this catches a change since).
func readPinned(p, digest, key string) ([]byte, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, inputErr(key, err)
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
		return nil, outcome.InputError(fmt.Errorf("%s: %s is %s, the config pins %s", key, p, got, digest), "the file changed; restore it or update the pin")
	}
	return data, nil
}

func copyPinned(src, dst, digest, key string) error {
	data, err := readPinned(src, digest, key)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

func inputErr(key string, err error) error {
	var oe *outcome.Error
	if errors.As(err, &oe) {
		return err
	}
	return outcome.InputError(fmt.Errorf("%s: %w", key, err), hintFor(err))
}

func hintFor(err error) string {
	switch {
	case errors.Is(err, tree.ErrLimit):
		return "raise image.rootfs.limits if the input is trusted"
	case errors.Is(err, tree.ErrDevice):
		return "remove device nodes from the layer; the guest's /dev is devtmpfs"
	case errors.Is(err, tree.ErrLink):
		return "fix the link in the source; cvmkit refuses links that leave the root filesystem"
	}
	return ""
}

// normaliseModes gives every output mode 0644 whatever the umask.
func normaliseModes(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Chmod(filepath.Join(dir, e.Name()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// limitsOf converts the config's limits (defaults applied by config.Load).
func limitsOf(l config.Limits) tree.Limits {
	return tree.Limits{MaxFileSize: int64(l.MaxFileSize), MaxTotalSize: int64(l.MaxTotalSize), MaxEntries: l.MaxEntries}
}

// digestFile returns the sha256 and sha384 of an output, reading it once.
func digestFile(p string) (LockFile, error) {
	d, err := fileio.Digest(p, "image output", 1<<62)
	return LockFile{Size: d.Size, SHA256: d.SHA256, SHA384: d.SHA384}, err
}
