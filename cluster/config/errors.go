package config

import (
	"fmt"
	"strings"
)

// Error is one problem in a config, placed at its file, line and field so
// that the user can go straight to it. Several are returned joined with
// errors.Join, one per line; errors.As finds each of them.
type Error struct {
	File  string // as given to Load or Parse; "<stdin>" for stdin; "" for no file
	Line  int    // 1-based; 0 when the problem has no line (a default, a flag)
	Field string // path such as nodes[1].extraPortMappings[0].hostPort; "" for the document
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// source is where a config came from: the file name and the line of every
// field path seen while decoding, so that later checks can point at lines.
type source struct {
	file  string
	lines map[string]int
}

func newSource(file string) *source {
	return &source{file: file, lines: map[string]int{}}
}

// errorf builds an Error for a field path, at the line of the field or of
// its nearest ancestor present in the file (a defaulted field has none).
func (s *source) errorf(path, format string, args ...any) *Error {
	return &Error{File: s.file, Line: s.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}

func (s *source) lineOf(path string) int {
	for {
		if l, ok := s.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// parentPath drops the last element of a field path: "a.b[2]" -> "a.b" -> "a".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndex(path, "."); i >= 0 {
		return path[:i]
	}
	return ""
}

// childPath joins a field path and a key; keys that are not plain names
// (label keys such as example.com/zone) are quoted in brackets.
func childPath(path, key string) string {
	if !isPlainKey(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

func isPlainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// renamePrefix returns the lines with every path under from moved under to;
// conversions use it so that lines follow fields to their internal place.
func (s *source) renamePrefix(from, to string) map[string]int {
	out := map[string]int{}
	for p, l := range s.lines {
		if rest, ok := strings.CutPrefix(p, from); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			out[to+rest] = l
		}
	}
	return out
}
