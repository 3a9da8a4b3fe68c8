package conflict

import (
	"testing"
	"time"
)

func TestNameParsesBack(t *testing.T) {
	at := time.Unix(1764990000, 0).UTC()
	for _, c := range []struct {
		path, pod string
		wantPod   string
	}{
		{"a.jpg", "wordpress-7d9f-abcde", "wordpress-7d9f-abcde"},
		{"uploads/2026/12/photo.v2.final.jpg", "web-0", "web-0"},
		{"a.jpg.bak", "pod", "pod"},
		{"noext", "host.example.com", "host-example-com"}, // a dotted pod name would make the path ambiguous
		{"dir.d/x", "", "unknown"},
		{"trailing.", "p", "p"},
	} {
		name := Name(c.path, c.pod, at)
		got, ok := Parse(name)
		if !ok || got != (Copy{Path: c.path, Pod: c.wantPod, Time: at}) {
			t.Errorf("Parse(Name(%q, %q)) = %+v, %v (name %q)", c.path, c.pod, got, ok, name)
		}
	}
}

func TestParseRejectsOtherNames(t *testing.T) {
	for _, name := range []string{
		"a.jpg.pod.123",                 // not under the folder
		".filesync/conflicts/a.jpg",     // no replica, no time
		".filesync/conflicts/a.pod.12x", // time not a number
		".filesync/conflicts/a.pod.-5",  // negative
		".filesync/conflicts/a.pod.+5",  // signed
		".filesync/conflicts/.pod.123",  // no path
		".filesync/conflicts/a..123",    // no replica
		".filesync/conflicts/pod.123",   // no path: "pod" is the replica
		".filesync/tmp/a.pod.123",       // another folder
	} {
		if c, ok := Parse(name); ok {
			t.Errorf("Parse(%q) = %+v, want not a conflict copy", name, c)
		}
	}
}

// TestPrefixSharedByLongerPaths: the listing of a.jpg's prefix also returns a.jpg.bak's copies; Parse
// tells them apart.
func TestPrefixSharedByLongerPaths(t *testing.T) {
	other := Name("a.jpg.bak", "web-1", time.Unix(5, 0))
	if got := Prefix("a.jpg"); other[:len(got)] != got {
		t.Fatalf("%q does not start with %q", other, got)
	}
	if c, _ := Parse(other); c.Path != "a.jpg.bak" {
		t.Fatalf("Parse(%q).Path = %q", other, c.Path)
	}
}
