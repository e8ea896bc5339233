package firmware

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cvmkit/cvmkit/internal/atomicfile"
	"github.com/cvmkit/cvmkit/internal/helper"
	"github.com/cvmkit/cvmkit/outcome"
)

// BuildRoot is where every build runs: one fixed folder per recipe digest.
// edk2 writes its build folder's path into the firmware (a build in another
// folder differed in 266,008 of 4 MiB bytes: the compressed firmware
// volumes spread the difference), so the path is part of the recipe, the
// same on every machine.
const BuildRoot = "/var/tmp/cvmkit-firmware"

// Options say where a build keeps its sources and results and how it
// reaches the outside.
type Options struct {
	// CacheDir keeps the fetched sources and the built firmware, by
	// digest: a second build of the same recipe returns the cached one.
	CacheDir string
	// Rebuild builds even when the cache has the firmware (and checks the
	// new bytes against the cached ones).
	Rebuild bool
	// Jobs is the parallelism of the edk2 build (0: 2).
	Jobs int
	// Progress receives a line per step and the build tools' output is
	// kept in the cache's log file.
	Progress io.Writer
	// Fetch downloads a source tarball to dst; the digest is checked
	// after. Nil: sources must already be in CacheDir.
	Fetch func(ctx context.Context, s Source, dst string) error
	// Installed returns the installed version of a Debian package ("" if
	// it is not installed). Nil: dpkg-query.
	Installed func(name string) (string, error)
}

// Provenance records how a firmware was built, written beside it as
// FILE.provenance.json.
type Provenance struct {
	Recipe       Recipe    `json:"recipe"`
	RecipeDigest string    `json:"recipe_digest"`
	SHA256       string    `json:"sha256"`
	Size         int64     `json:"size"`
	Toolchain    []Package `json:"toolchain_installed"`
	Command      []string  `json:"command"`
	BuildRoot    string    `json:"build_root"`
	Environment  []string  `json:"environment"`
}

// Result is a built (or cached) firmware.
type Result struct {
	// Path is the firmware file in the cache.
	Path       string
	Provenance Provenance
	Cached     bool
	Seconds    float64
}

// ErrToolchain is the error for a missing or other toolchain package.
var ErrToolchain = errors.New("the toolchain differs from the recipe's")

// Build builds the recipe's firmware, or returns it from the cache.
func Build(ctx context.Context, r Recipe, o Options) (*Result, error) {
	start := time.Now()
	if o.CacheDir == "" {
		return nil, outcome.UsageError(errors.New("firmware: no cache folder given"))
	}
	// The build's steps run in the build folder: the cache is named by
	// its absolute path.
	cache, err := filepath.Abs(o.CacheDir)
	if err != nil {
		return nil, err
	}
	o.CacheDir = cache
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Jobs <= 0 {
		o.Jobs = 2
	}
	if o.Installed == nil {
		o.Installed = dpkgVersion
	}
	digest := r.Digest()
	out := filepath.Join(o.CacheDir, r.Name+"-"+digest[:16]+".fd")
	if !o.Rebuild {
		if p, err := readProvenance(out); err == nil && fileSHA256(out) == p.SHA256 {
			return &Result{Path: out, Provenance: *p, Cached: true, Seconds: time.Since(start).Seconds()}, nil
		}
	}
	installed, err := checkToolchain(r, o.Installed)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, err
	}
	for _, s := range r.Sources {
		if err := fetch(ctx, s, o); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(BuildRoot, digest[:16])
	if err := makeBuildRoot(); err != nil {
		return nil, err
	}
	lock, err := atomicfile.LockFolder(BuildRoot)
	if err != nil {
		return nil, fmt.Errorf("firmware: locking %s (another build is running?): %w", BuildRoot, err)
	}
	defer lock.Close()
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	logPath := filepath.Join(o.CacheDir, r.Name+"-"+digest[:16]+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	env := buildEnv(r, root)
	run := func(what, dir, script string) error {
		fmt.Fprintf(o.Progress, "cvmkit: firmware %s: %s …\n", r.Name, what)
		fmt.Fprintf(logf, "== %s\n$ %s\n", what, script)
		c := helper.Command(ctx, "bash", "-c", "set -eu; umask 022; "+script)
		c.Dir, c.Env, c.Stdout, c.Stderr = dir, env, logf, logf
		if err := c.Run(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("firmware %s: %s failed (%v): see %s", r.Name, what, err, logPath)
		}
		return nil
	}
	tree := filepath.Join(root, "edk2")
	if err := os.MkdirAll(filepath.Join(root, "home"), 0o755); err != nil {
		return nil, err
	}
	orig, deb := filepath.Join(o.CacheDir, r.Sources[0].File), filepath.Join(o.CacheDir, r.Sources[1].File)
	steps := []struct{ what, dir, script string }{
		{"unpacking the sources", root, fmt.Sprintf("mkdir edk2 && tar -xJf %q -C edk2 --strip-components=1 && tar -xJf %q -C edk2", orig, deb)},
		{"applying Debian's patches", tree, `while read -r p; do case $p in ''|'#'*) continue;; esac; patch -p1 -s --no-backup-if-mismatch < "debian/patches/$p"; done < debian/patches/series`},
		{"building BaseTools", tree, fmt.Sprintf("make -C BaseTools ARCH=X64 -j%d", o.Jobs)},
	}
	var touch []string
	for _, f := range r.EmptyFiles {
		touch = append(touch, strconv.Quote(f))
	}
	cmd := append([]string{"build", "-a", "X64", "-t", "GCC5", "-b", "RELEASE", "-p", r.Platform, "-n", strconv.Itoa(o.Jobs)}, r.Flags...)
	var quoted []string
	for _, a := range cmd {
		quoted = append(quoted, shellQuote(a))
	}
	buildScript := "set +u; . ./edksetup.sh; set -u; "
	if len(r.CCFlags) > 0 {
		// edksetup.sh has copied BaseTools' tools_def template to Conf/;
		// the flags go at the end of the RELEASE GCC5 X64 compiler flags.
		buildScript += fmt.Sprintf("sed -i 's|^RELEASE_GCC5_X64_CC_FLAGS .*$|& %s|' Conf/tools_def.txt; grep -q -- %s Conf/tools_def.txt; ",
			strings.ReplaceAll(strings.Join(r.CCFlags, " "), "|", `\|`), shellQuote(r.CCFlags[0]))
	}
	if len(touch) > 0 {
		buildScript += ": > " + strings.Join(touch, " && : > ") + "; "
	}
	buildScript += strings.Join(quoted, " ")
	steps = append(steps, struct{ what, dir, script string }{"building " + r.Platform + " (a few minutes)", tree, buildScript})
	for _, s := range steps {
		if err := run(s.what, s.dir, s.script); err != nil {
			return nil, err
		}
	}
	built := filepath.Join(tree, filepath.FromSlash(r.Output))
	data, err := os.ReadFile(built)
	if err != nil {
		return nil, fmt.Errorf("firmware %s: the build left no %s: %w", r.Name, r.Output, err)
	}
	sum := sha256.Sum256(data)
	p := Provenance{Recipe: r, RecipeDigest: digest, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
		Toolchain: installed, Command: cmd, BuildRoot: root, Environment: env}
	if r.SHA256 != "" && r.SHA256 != p.SHA256 {
		return nil, outcome.InputError(fmt.Errorf("firmware %s: the build gave sha256 %s, the recipe expects %s: it is not reproduced here", r.Name, p.SHA256, r.SHA256),
			"check the toolchain's versions against the recipe's; the build log is "+logPath)
	}
	if old := fileSHA256(out); old != "" && old != p.SHA256 {
		return nil, outcome.InputError(fmt.Errorf("firmware %s: this build gave sha256 %s, the cached one %s: the build is not reproducible here", r.Name, p.SHA256, old),
			"compare the two builds' logs; the cached firmware is kept")
	}
	if err := atomicfile.WriteFile(out, data, 0o644); err != nil {
		return nil, err
	}
	pj, _ := json.MarshalIndent(p, "", "  ")
	if err := atomicfile.WriteFile(out+".provenance.json", append(pj, '\n'), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Progress, "cvmkit: firmware %s: built %s (sha256 %s) in %.0f s\n", r.Name, out, p.SHA256, time.Since(start).Seconds())
	return &Result{Path: out, Provenance: p, Seconds: time.Since(start).Seconds()}, nil
}

// makeBuildRoot creates BuildRoot as a shared folder any user may build
// in (sticky and world-writable, as /var/tmp itself: each build's folder
// belongs to its user), and refuses one that another user owns, who could
// change the sources under a build.
func makeBuildRoot() error {
	if err := os.Mkdir(BuildRoot, 0o755); err == nil {
		if err := os.Chmod(BuildRoot, os.ModeSticky|0o777); err != nil {
			return err
		}
	} else if !os.IsExist(err) {
		return err
	}
	fi, err := os.Lstat(BuildRoot)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || (ok && st.Uid != 0 && int(st.Uid) != os.Getuid()) {
		return outcome.InputError(fmt.Errorf("firmware: %s is not a folder owned by root or by this user", BuildRoot),
			"remove it (cvmkit creates it, sticky like /var/tmp, so that every user can build in it)")
	}
	return nil
}

// buildEnv is the whole environment of the build: nothing of the caller's
// (time zone, locale, user, home, Python's hash seed) reaches it.
func buildEnv(r Recipe, root string) []string {
	return []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(root, "home"),
		"TZ=UTC", "LC_ALL=C.UTF-8", "LANG=C.UTF-8",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(r.SourceDateEpoch, 10),
		"PYTHON3_ENABLE=TRUE", "PYTHON_COMMAND=python3", "PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1",
	}
}

// checkToolchain compares the installed toolchain with the recipe's.
func checkToolchain(r Recipe, installed func(string) (string, error)) ([]Package, error) {
	var got []Package
	var problems []string
	var missing []string
	for _, p := range r.Toolchain {
		v, err := installed(p.Name)
		if err != nil {
			return nil, err
		}
		got = append(got, Package{Name: p.Name, Version: v})
		switch {
		case v == "":
			missing = append(missing, p.Name)
			problems = append(problems, fmt.Sprintf("%s is not installed (the recipe needs %s)", p.Name, p.Version))
		case v != p.Version:
			problems = append(problems, fmt.Sprintf("%s is %s, the recipe needs %s", p.Name, v, p.Version))
		}
	}
	if len(problems) == 0 {
		return got, nil
	}
	hint := "the firmware is reproducible with the recipe's toolchain (Debian bookworm's): run scripts/install-deps.sh"
	if len(missing) > 0 {
		hint = "apt-get install " + strings.Join(missing, " ") + " (or scripts/install-deps.sh)"
	}
	return nil, outcome.InputError(fmt.Errorf("firmware %s: %w: %s", r.Name, ErrToolchain, strings.Join(problems, "; ")), hint)
}

// dpkgVersion is the installed version of a Debian package, or "".
func dpkgVersion(name string) (string, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Status} ${Version}", name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", nil // not known to dpkg
		}
		return "", fmt.Errorf("dpkg-query: %w (firmware builds need Debian's dpkg)", err)
	}
	status, version, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if status != "installed" {
		return "", nil
	}
	return version, nil
}

// fetch puts a source tarball into the cache, checking its digest.
func fetch(ctx context.Context, s Source, o Options) error {
	dst := filepath.Join(o.CacheDir, s.File)
	if fileSHA256(dst) == s.SHA256 {
		return nil
	}
	if o.Fetch == nil {
		return outcome.InputError(fmt.Errorf("firmware source %s is not in %s", s.File, o.CacheDir), "download "+s.URL+" (sha256 "+s.SHA256+") into it")
	}
	fmt.Fprintf(o.Progress, "cvmkit: firmware: fetching %s (%d MiB) …\n", s.File, s.Size>>20)
	tmp := dst + ".part"
	os.Remove(tmp)
	if err := o.Fetch(ctx, s, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fetching %s: %w", s.URL, err)
	}
	if got := fileSHA256(tmp); got != s.SHA256 {
		os.Remove(tmp)
		return outcome.InputError(fmt.Errorf("%s has sha256 %s, the recipe pins %s (from Debian's signed Sources index)", s.URL, got, s.SHA256))
	}
	return os.Rename(tmp, dst)
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readProvenance(fw string) (*Provenance, error) {
	b, err := os.ReadFile(fw + ".provenance.json")
	if err != nil {
		return nil, err
	}
	var p Provenance
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
