package tree

import (
	"io/fs"
	"syscall"
)

// sysStamp is the change time, inode and device of a file.
func sysStamp(fi fs.FileInfo) (ctime int64, ino, dev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Nano(), st.Ino, st.Dev
	}
	return 0, 0, 0
}
