// Package build assembles the guest image deterministically from pinned
// inputs: OCI layers flattened into a tree, an EROFS root filesystem, its
// dm-verity hash tree, a newc cpio initrd holding cvmkit's init, the kernel
// command line, and image.lock.json.
//
// It is a silent library: it takes a context, the loaded config, the
// SOURCE_DATE_EPOCH time and an optional *slog.Logger, writes only under the
// output folder it is given (through temporary names), and never imports
// another domain package (internal/depcheck enforces it).
package build
