package containerd

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// deleteLink removes a network interface by name through rtnetlink; a
// missing interface is not an error (the bridge plugin creates it lazily).
func deleteLink(name string) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	msg := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg)
	hdr := (*unix.NlMsghdr)(ptr(msg))
	hdr.Len = uint32(len(msg))
	hdr.Type = unix.RTM_DELLINK
	hdr.Flags = unix.NLM_F_REQUEST | unix.NLM_F_ACK
	hdr.Seq = 1
	info := (*unix.IfInfomsg)(ptr(msg[unix.SizeofNlMsghdr:]))
	info.Family = unix.AF_UNSPEC
	info.Index = int32(ifc.Index)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscallParseNetlink(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if code := int32(nativeUint32(m.Data[:4])); code != 0 {
				if unix.Errno(-code) == unix.ENODEV {
					return nil
				}
				return unix.Errno(-code)
			}
		}
	}
	return nil
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

func syscallParseNetlink(b []byte) ([]syscall.NetlinkMessage, error) {
	return syscall.ParseNetlinkMessage(b)
}

// nativeUint32 reads a netlink integer, which is in host byte order.
func nativeUint32(b []byte) uint32 {
	return binary.NativeEndian.Uint32(b)
}
