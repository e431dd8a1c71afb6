// Package nodeimage builds kinc's images without a daemon, with
// go-containerregistry: the base image (Debian from debootstrap, systemd,
// containerd, runc, CNI plugins, haproxy, kinc's entrypoint and units) and
// node images (the base plus Kubernetes and the images a cluster preloads).
//
// Pieces other builds reuse:
//   - LayerFromDir and LayerFromEntries make deterministic gzip layers from a
//     tree or from a list of files (same input, same digest; ownership,
//     modes, links kept; every mtime is Epoch).
//   - WriteImage writes an image as docker-archive, oci-archive or an OCI
//     layout directory, atomically; ParseOutput reads --output values; Load
//     streams an image into a runtime.Runtime; ReadImage reads a
//     docker-archive or an OCI layout back.
//   - BuildBase makes the base image, caching its root filesystem layer under
//     CacheDir() by its inputs; CachedBaseArchive returns a docker-archive of
//     the default base image for tests and for `kinc build node-image`.
//   - ContainerdConfig renders the node's /etc/containerd/config.toml, and
//     NodeFiles returns kinc's node files, for node images that change them.
//
// The base image's entrypoint (files/rootfs/usr/local/bin/entrypoint)
// prepares the container at every boot (mount propagation, cgroups, DNS,
// oom_score_adj, machine identity) and then execs /sbin/init.
package nodeimage
