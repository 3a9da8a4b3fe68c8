package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a.txt", true},
		{"2026/11/photo.jpg", true},
		{"uploads/ünïcode and spaces.png", true},
		{"..", false},
		{"../etc/passwd", false},
		{"a/../../b", false},
		{"a/./b", false},
		{"/etc/passwd", false},
		{"a//b", false},
		{"dir/", false},
		{"", false},
		{"a\x00b", false},
		{`..\..\windows`, false},
		{`a\b`, false},
		{"C:evil", false},
		{"line\nbreak", false},
		{"bad\xffutf8.jpg", false},
		{strings.Repeat("a", 255) + "/ok", true},
		{"uploads/" + strings.Repeat("a", 256), false},
	} {
		err := CheckName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnsafe) {
			t.Errorf("CheckName(%q) = %v, want ErrUnsafe", tc.name, err)
		}
	}
}

func TestExcluded(t *testing.T) {
	f, err := New([]string{"cache/**", "*.tmp", "**/node_modules", "upgrade", "uploads/*/private/**", "tmp/", "/debug.log"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"cache/a", true},
		{"cache/x/y/z", true},
		{"cache", true},
		{"cachex/a", false},
		{"a.tmp", true},
		{"dir/a.tmp", true}, // no slash: any depth, as in .gitignore
		{"upgrade", true},
		{"plugins/upgrade/x.zip", true},
		{"tmp/x", true}, // trailing slash: the directory and all below it
		{"a/tmp/x/y", true},
		{"tmp", false}, // a file named tmp is not a directory
		{"debug.log", true},
		{"sub/debug.log", false}, // anchored by the leading slash
		{"node_modules/x.js", true},
		{"plugins/foo/node_modules/x.js", true},
		{"upgrade/wordpress.zip", true},
		{"uploads/2026/private/a.jpg", true},
		{"uploads/2026/11/a.jpg", false},
		{"themes/x/style.css", false},
	} {
		if got := f.Excluded(tc.rel); got != tc.want {
			t.Errorf("Excluded(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
}

func TestSkipDir(t *testing.T) {
	f, _ := New([]string{"tmp/", "cache"})
	if !f.SkipDir("tmp") || !f.SkipDir("x/tmp") || !f.SkipDir("cache") || f.SkipDir("uploads") || !f.SkipDir(".filesync") {
		t.Fatal("SkipDir")
	}
}

func TestNewRejectsBadGlob(t *testing.T) {
	for _, g := range []string{"a/[b", "/", "a//b"} {
		if _, err := New([]string{g}); err == nil {
			t.Errorf("New(%q): want error", g)
		}
	}
}

func TestInternal(t *testing.T) {
	for rel, want := range map[string]bool{
		".filesync":                 true,
		".filesync/conflicts/a.1.2": true,
		".filesync/tmp/0123abcd":    true,
		"a/.filesync-tmp-123":       false, // an app file like any other
		".filesyncx":                false,
		"uploads/a.jpg":             false,
		"uploads/.filesync/x":       false,
	} {
		if got := Internal(rel); got != want {
			t.Errorf("Internal(%q) = %v, want %v", rel, got, want)
		}
	}
}
