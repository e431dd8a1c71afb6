package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/pkg/cap"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kinc-dev/kinc/runtime"
)

// stopSignal is runtime.StopSignal, SIGRTMIN+3 (glibc's SIGRTMIN is 34),
// which makes systemd as PID 1 shut down cleanly.
const stopSignal = syscall.Signal(37)

// nodeFiles are the host files kinc bind-mounts into a node.
type nodeFiles struct {
	varDir, hosts, resolvConf, hostname string
}

func (s store) files(name string) nodeFiles {
	d := s.nodeDir(name)
	return nodeFiles{
		varDir:     filepath.Join(d, "var"),
		hosts:      filepath.Join(d, "hosts"),
		resolvConf: filepath.Join(d, "resolv.conf"),
		hostname:   filepath.Join(d, "hostname"),
	}
}

// nodeSpecOpts builds the OCI spec of a node: privileged as far as the
// caller's own capabilities go, every host device, its own cgroup namespace,
// systemd from the image as PID 1, tmpfs on /run and /tmp, /var on a host
// directory, and kinc's hosts, resolv.conf and hostname files.
func nodeSpecOpts(spec runtime.NodeSpec, img containerd.Image, files nodeFiles, caps []string, namespace string) ([]oci.SpecOpts, error) {
	// systemd accepts any value of container= and reports "container-other"
	// for names it does not know.
	env := runtime.NodeEnv(spec, "containerd")
	mounts, err := nodeMounts(spec, files)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfigArgs(img, spec.Command),
		oci.WithEnv(env),
		oci.WithHostname(spec.Hostname),
		oci.WithCapabilities(caps),
		oci.WithMaskedPaths(nil),
		oci.WithReadonlyPaths(nil),
		oci.WithWriteableSysfs,
		oci.WithWriteableCgroupfs,
		oci.WithSelinuxLabel(""),
		oci.WithApparmorProfile(""),
		oci.WithSeccompUnconfined,
		oci.WithNewPrivileges,
		oci.WithHostDevices,
		oci.WithAllDevicesAllowed,
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.CgroupNamespace}),
		oci.WithCgroup(filepath.Join("/", namespace, spec.Name)),
		withMountsReplacing(mounts),
		withRootPropagation(spec.Mounts),
		withNofile(),
	}
	return opts, nil
}

// nodeMounts lists the mounts a node gets besides the default ones.
func nodeMounts(spec runtime.NodeSpec, files nodeFiles) ([]specs.Mount, error) {
	mounts := []specs.Mount{
		// containerd's default spec has no cgroup mount (CRI adds its own):
		// without one systemd mounts the hierarchies itself, guessing at
		// their layout (it joins cpu and cpuacct, which hosts may keep
		// apart) and leaving controllers unusable for nested containers.
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "rw"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/var", Type: "bind", Source: files.varDir, Options: []string{"rbind", "rw"}},
		{Destination: "/etc/hosts", Type: "bind", Source: files.hosts, Options: []string{"rbind", "rw"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: files.resolvConf, Options: []string{"rbind", "rw"}},
		{Destination: "/etc/hostname", Type: "bind", Source: files.hostname, Options: []string{"rbind", "rw"}},
	}
	for _, m := range runtime.NodeMounts(spec) {
		if m.HostPath == "" || m.ContainerPath == "" {
			return nil, fmt.Errorf("mount %q:%q: %w", m.HostPath, m.ContainerPath, runtime.ErrInvalid)
		}
		opts := []string{"rbind"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		switch m.Propagation {
		case runtime.PropagationHostToContainer:
			opts = append(opts, "rslave")
		case runtime.PropagationBidirectional:
			opts = append(opts, "rshared")
		default:
			opts = append(opts, "rprivate")
		}
		mounts = append(mounts, specs.Mount{Destination: m.ContainerPath, Type: "bind", Source: m.HostPath, Options: opts})
	}
	return mounts, nil
}

// withMountsReplacing adds mounts, dropping any default mount on the same
// path (containerd's default spec has a small /run of its own).
func withMountsReplacing(mounts []specs.Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		replaced := map[string]bool{}
		for _, m := range mounts {
			replaced[filepath.Clean(m.Destination)] = true
		}
		kept := s.Mounts[:0]
		for _, m := range s.Mounts {
			if !replaced[filepath.Clean(m.Destination)] {
				kept = append(kept, m)
			}
		}
		s.Mounts = append(kept, mounts...)
		return nil
	}
}

// withRootPropagation makes the root mount shared or slave when a bind
// mount asks for it: propagation cannot be stronger than its parent's.
func withRootPropagation(mounts []runtime.Mount) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		prop := ""
		for _, m := range mounts {
			switch m.Propagation {
			case runtime.PropagationBidirectional:
				prop = "rshared"
			case runtime.PropagationHostToContainer:
				if prop == "" {
					prop = "rslave"
				}
			}
		}
		if prop != "" {
			s.Linux.RootfsPropagation = prop
		}
		return nil
	}
}

// withNofile raises the open files limit from containerd's default of 1024
// to the caller's hard limit: a node runs containerd and kubelet, and
// without CAP_SYS_RESOURCE nobody can go above the hard limit anyway.
func withNofile() oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return nil
		}
		rl := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: lim.Max, Soft: lim.Max}
		for i, r := range s.Process.Rlimits {
			if r.Type == rl.Type {
				s.Process.Rlimits[i] = rl
				return nil
			}
		}
		s.Process.Rlimits = append(s.Process.Rlimits, rl)
		return nil
	}
}

// boundingCaps are the capabilities of the calling process's bounding set:
// a node cannot hold more than the runtime that starts it, and a fixed list
// breaks on hosts whose root lacks some (CAP_SYS_RESOURCE here).
func boundingCaps() ([]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("reading capabilities: %w", err)
	}
	defer f.Close()
	set, err := cap.ParseProcPIDStatus(f)
	if err != nil {
		return nil, fmt.Errorf("reading capabilities: %w", err)
	}
	names, _ := cap.FromBitmap(set[cap.Bounding])
	return names, nil
}
