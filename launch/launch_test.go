package launch

import (
	"strings"
	"testing"
)

var testImage = Image{
	Kernel: File{Path: "image/vmlinuz", SHA256: "k"}, Initrd: File{Path: "image/initrd.img", SHA256: "i"},
	RootFS: File{Path: "image/rootfs.img", SHA256: "r"}, Cmdline: "console=ttyS0 cvmkit.root=/dev/vda cvmkit.verity=ab,cd,1,2",
}

func TestForSNP(t *testing.T) {
	r, err := ForSNP("demo@1", testImage, SNP{Configuration: "snp-x.qemu-EPYC-Genoa-4vcpu", VMM: "qemu", Mode: "snp", VCPUType: "EPYC-Genoa", VCPUs: 4,
		Policy: 0x30000, GuestFeatures: 1, KernelHashes: true, HostData: []byte{1, 2}, IDBlock: "aWQ=", IDAuth: "YXV0aA==", AuthorKey: true,
		Measurement: "mm", Firmware: File{Path: "fw/OVMF.amdsev.fd", SHA256: "f"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "qemu-system-x86_64 -enable-kvm -nodefaults -nographic -serial stdio -machine q35,confidential-guest-support=sev0,memory-backend=ram0 " +
		"-object memory-backend-memfd,id=ram0,size=2G,share=true,prealloc=false " +
		"-object sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,policy=0x30000,kernel-hashes=on,host-data=AQI=,id-block=aWQ=,id-auth=YXV0aA==,author-key-enabled=on " +
		"-cpu EPYC-Genoa -smp 4 -m 2G -bios OVMF.amdsev.fd -kernel image/vmlinuz -initrd image/initrd.img " +
		"-append 'console=ttyS0 cvmkit.root=/dev/vda cvmkit.verity=ab,cd,1,2' -drive if=none,id=root,file=image/rootfs.img,format=raw,readonly=on -device virtio-blk-pci,drive=root"
	if got := r.QEMU.ShellCommand(); got != want {
		t.Errorf("command\n%s\nwant\n%s", got, want)
	}
	if r.Expect["measurement"] != "mm" || r.Expect["host_data"] != "0102" || r.Expect["policy"] != "0x30000" || r.Files["firmware"].SHA256 != "f" {
		t.Errorf("%+v", r)
	}
	// Without kernel hashes: no kernel-hashes=on, and the recipe says what is unbound.
	r, _ = ForSNP("demo@1", testImage, SNP{Configuration: "c", VMM: "qemu", VCPUType: "EPYC-v4", VCPUs: 1, Policy: 0x30000, GuestFeatures: 1})
	if strings.Contains(r.QEMU.ShellCommand(), "kernel-hashes") || !strings.Contains(strings.Join(r.Notes, "\n"), "binds the firmware only") {
		t.Errorf("no kernel hashes: %s %v", r.QEMU.ShellCommand(), r.Notes)
	}
	// EC2: no QEMU command.
	r, _ = ForSNP("demo@1", testImage, SNP{Configuration: "c", VMM: "ec2", VCPUs: 2, Policy: 0x30000, GuestFeatures: 1})
	if r.QEMU != nil {
		t.Error("a QEMU command for EC2")
	}
}

func TestForTDX(t *testing.T) {
	rtmr := "11"
	img := testImage
	img.HashTree = &File{Path: "image/rootfs.verity", SHA256: "h"}
	r, err := ForTDX("demo@1", img, TDX{Configuration: "tdx-td-4vcpu", MRTD: "m", RTMR: [4]*string{nil, &rtmr}, Memory: 4 << 30, VCPUs: 4, Firmware: File{Path: "OVMF.fd"}})
	if err != nil {
		t.Fatal(err)
	}
	got := r.QEMU.ShellCommand()
	for _, want := range []string{"-object tdx-guest,id=tdx0 -machine q35,kernel-irqchip=split,confidential-guest-support=tdx0,hpet=off -cpu host -smp 4 -m 4096M -bios OVMF.fd",
		"-drive if=none,id=hashtree,file=image/rootfs.verity,format=raw,readonly=on -device virtio-blk-pci,drive=hashtree"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s\nlacks %s", got, want)
		}
	}
	notes := strings.Join(r.Notes, "\n")
	if r.Expect["rtmr1"] != "11" || r.Expect["rtmr0"] != "" || !strings.Contains(notes, "qemu_fw_cfg/by_name/etc/acpi/tables/raw") || !strings.Contains(notes, "RTMR2 stays zero") {
		t.Errorf("%+v", r)
	}
	if _, err := ForTDX("demo@1", img, TDX{Configuration: "x"}); err == nil {
		t.Error("no memory or vCPUs accepted")
	}
}

func TestNonConfidential(t *testing.T) {
	got := strings.Join(NonConfidential([]string{"-enable-kvm", "-machine", "q35,confidential-guest-support=sev0,memory-backend=ram0", "-object", "sev-snp-guest,id=sev0", "-object", "memory-backend-memfd,id=ram0", "-cpu", "EPYC-Milan", "-accel", "kvm", "-object", "tdx-guest,id=tdx0"}), " ")
	if want := "-accel tcg -machine q35,memory-backend=ram0 -object memory-backend-memfd,id=ram0 -cpu max"; got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
}
